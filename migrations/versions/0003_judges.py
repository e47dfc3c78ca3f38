"""judges and their judgements

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "judges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("config", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("rater_id", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('gemini_pairwise', 'openai_pairwise')",
                           name=op.f("ck_judges_kind")),
        sa.ForeignKeyConstraint(["rater_id"], ["raters.id"], name=op.f("fk_judges_rater_id_raters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_judges")),
        sa.UniqueConstraint("name", name=op.f("uq_judges_name")),
        sa.UniqueConstraint("rater_id", name=op.f("uq_judges_rater_id")),
    )
    op.create_table(
        "judgements",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("battle_id", sa.BigInteger(), nullable=False),
        sa.Column("judge_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("forward", sa.String(length=8), nullable=True),
        sa.Column("reverse", sa.String(length=8), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("replies", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("prompt_version", sa.String(length=64), nullable=True),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("usage", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("claim_token", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'voted', 'inconsistent', 'invalid', 'failed')",
            name=op.f("ck_judgements_status")),
        sa.ForeignKeyConstraint(["battle_id"], ["battles.id"],
                                name=op.f("fk_judgements_battle_id_battles")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_judgements_job_id_jobs")),
        sa.ForeignKeyConstraint(["judge_id"], ["judges.id"],
                                name=op.f("fk_judgements_judge_id_judges")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_judgements")),
        sa.UniqueConstraint("battle_id", name=op.f("uq_judgements_battle_id")),
    )
    op.create_index(op.f("ix_judgements_judge_id"), "judgements", ["judge_id"])
    op.create_index(op.f("ix_judgements_job_id"), "judgements", ["job_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_judgements_job_id"), table_name="judgements")
    op.drop_index(op.f("ix_judgements_judge_id"), table_name="judgements")
    op.drop_table("judgements")
    op.drop_table("judges")
