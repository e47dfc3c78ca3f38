"""people's 1-5 ratings of single answers

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "human_ratings",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("rater_id", sa.Integer(), nullable=False),
        sa.Column("served_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("score IS NULL OR score BETWEEN 1 AND 5",
                           name=op.f("ck_human_ratings_score")),
        sa.ForeignKeyConstraint(["rater_id"], ["raters.id"],
                                name=op.f("fk_human_ratings_rater_id_raters")),
        sa.ForeignKeyConstraint(["response_id"], ["responses.id"],
                                name=op.f("fk_human_ratings_response_id_responses")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_human_ratings")),
        sa.UniqueConstraint("response_id", "rater_id",
                            name=op.f("uq_human_ratings_response_id_rater_id")),
        sa.UniqueConstraint("token", name=op.f("uq_human_ratings_token")),
    )
    op.create_index(op.f("ix_human_ratings_response_id"), "human_ratings", ["response_id"])
    op.create_index(op.f("ix_human_ratings_rater_id"), "human_ratings", ["rater_id"])


def downgrade() -> None:
    op.drop_table("human_ratings")
