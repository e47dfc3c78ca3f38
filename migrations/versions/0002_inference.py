"""inference: response claims, attempts, usage and job; the models' outage breaker

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("responses", sa.Column("usage", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("responses", sa.Column("job_id", sa.Integer(), nullable=True))
    op.add_column("responses", sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("responses", sa.Column("claim_token", sa.String(length=64), nullable=True))
    op.add_column("responses", sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("responses", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.create_foreign_key(op.f("fk_responses_job_id_jobs"), "responses", "jobs", ["job_id"], ["id"])
    op.create_index(op.f("ix_responses_job_id"), "responses", ["job_id"])
    op.drop_constraint(op.f("ck_responses_status"), "responses", type_="check")
    op.create_check_constraint(op.f("ck_responses_status"), "responses",
                               "status IN ('pending', 'running', 'ready', 'failed')")
    op.add_column("speech_models", sa.Column("outage_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("speech_models", sa.Column("outage_probe_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("speech_models", sa.Column("outage_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("speech_models", "outage_reason")
    op.drop_column("speech_models", "outage_probe_at")
    op.drop_column("speech_models", "outage_since")
    op.drop_constraint(op.f("ck_responses_status"), "responses", type_="check")
    op.execute("UPDATE responses SET status = 'pending' WHERE status = 'running'")
    op.create_check_constraint(op.f("ck_responses_status"), "responses",
                               "status IN ('pending', 'ready', 'failed')")
    op.drop_index(op.f("ix_responses_job_id"), table_name="responses")
    op.drop_constraint(op.f("fk_responses_job_id_jobs"), "responses", type_="foreignkey")
    for column in ("updated_at", "claimed_until", "claim_token", "attempts", "job_id", "usage"):
        op.drop_column("responses", column)
