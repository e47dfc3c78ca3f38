"""pointwise judges and their scores

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint(op.f("ck_judges_kind"), "judges", type_="check")
    op.create_check_constraint(
        op.f("ck_judges_kind"), "judges",
        "kind IN ('gemini_pairwise', 'openai_pairwise', 'pipeline_pointwise')")
    op.create_table(
        "scores",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("judge_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("transcript", sa.Text(), nullable=True),
        sa.Column("caption", sa.Text(), nullable=True),
        sa.Column("replies", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("prompt_version", sa.String(length=64), nullable=True),
        sa.Column("usage", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("claim_token", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'running', 'scored', 'invalid', 'failed')",
                           name=op.f("ck_scores_status")),
        sa.CheckConstraint("score IS NULL OR score BETWEEN 1 AND 5", name=op.f("ck_scores_score")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_scores_job_id_jobs")),
        sa.ForeignKeyConstraint(["judge_id"], ["judges.id"], name=op.f("fk_scores_judge_id_judges")),
        sa.ForeignKeyConstraint(["response_id"], ["responses.id"],
                                name=op.f("fk_scores_response_id_responses")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scores")),
        sa.UniqueConstraint("response_id", "judge_id", name=op.f("uq_scores_response_id_judge_id")),
    )
    op.create_index(op.f("ix_scores_response_id"), "scores", ["response_id"])
    op.create_index(op.f("ix_scores_judge_id"), "scores", ["judge_id"])
    op.create_index(op.f("ix_scores_job_id"), "scores", ["job_id"])


def downgrade() -> None:
    op.drop_table("scores")
    op.drop_constraint(op.f("ck_judges_kind"), "judges", type_="check")
    op.create_check_constraint(op.f("ck_judges_kind"), "judges",
                               "kind IN ('gemini_pairwise', 'openai_pairwise')")
