"""annotator accounts, invite links, gold battles and flagged raters

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "annotators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rater_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("session_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('annotator', 'admin')", name=op.f("ck_annotators_role")),
        sa.ForeignKeyConstraint(["rater_id"], ["raters.id"],
                                name=op.f("fk_annotators_rater_id_raters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotators")),
        sa.UniqueConstraint("rater_id", name=op.f("uq_annotators_rater_id")),
        sa.UniqueConstraint("username", name=op.f("uq_annotators_username")),
    )
    op.create_table(
        "annotator_invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("annotator_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["annotator_id"], ["annotators.id"], ondelete="CASCADE",
                                name=op.f("fk_annotator_invites_annotator_id_annotators")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotator_invites")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_annotator_invites_token_hash")),
    )
    op.create_index(op.f("ix_annotator_invites_annotator_id"), "annotator_invites",
                    ["annotator_id"])
    op.add_column("raters", sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("raters", sa.Column("flag_reason", sa.Text(), nullable=True))
    op.add_column("raters", sa.Column("flag_cleared_at", sa.DateTime(timezone=True),
                                      nullable=True))
    op.add_column("battles", sa.Column("gold_bad_slot", sa.String(length=1), nullable=True))
    op.add_column("battles", sa.Column("gold_kind", sa.String(length=16), nullable=True))
    op.add_column("battles", sa.Column("gold_audio_key", sa.String(length=200), nullable=True))
    op.create_check_constraint(
        op.f("ck_battles_gold"), "battles",
        "(gold_bad_slot IS NULL AND gold_kind IS NULL) OR "
        "(gold_bad_slot IN ('a', 'b') AND gold_kind IN ('other_answer', 'silence', 'noise'))")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_battles_gold"), "battles", type_="check")
    op.drop_column("battles", "gold_audio_key")
    op.drop_column("battles", "gold_kind")
    op.drop_column("battles", "gold_bad_slot")
    op.drop_column("raters", "flag_cleared_at")
    op.drop_column("raters", "flag_reason")
    op.drop_column("raters", "flagged_at")
    op.drop_index(op.f("ix_annotator_invites_annotator_id"), table_name="annotator_invites")
    op.drop_table("annotator_invites")
    op.drop_table("annotators")
