"""how people listened to the battles served to them: play events, skips, broken-clip reports

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "battle_plays",
        sa.Column("battle_id", sa.BigInteger(), nullable=False),
        sa.Column("prompt_heard", sa.Float(), server_default="0", nullable=False),
        sa.Column("a_heard", sa.Float(), server_default="0", nullable=False),
        sa.Column("b_heard", sa.Float(), server_default="0", nullable=False),
        sa.Column("prompt_ended", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("a_ended", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("b_ended", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("listened_s", sa.Float(), server_default="0", nullable=False),
        sa.Column("ending", sa.String(length=16), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("report_slot", sa.String(length=8), nullable=True),
        sa.Column("report_note", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("ending IS NULL OR ending IN ('voted', 'skipped', 'reported')",
                           name=op.f("ck_battle_plays_ending")),
        sa.CheckConstraint("report_slot IS NULL OR report_slot IN ('prompt', 'a', 'b')",
                           name=op.f("ck_battle_plays_report_slot")),
        sa.CheckConstraint("prompt_heard BETWEEN 0 AND 1 AND a_heard BETWEEN 0 AND 1 "
                           "AND b_heard BETWEEN 0 AND 1", name=op.f("ck_battle_plays_heard")),
        sa.ForeignKeyConstraint(["battle_id"], ["battles.id"], ondelete="CASCADE",
                                name=op.f("fk_battle_plays_battle_id_battles")),
        sa.PrimaryKeyConstraint("battle_id", name=op.f("pk_battle_plays")),
    )
    # Battles people were served before this table existed: logged as served, and as voted
    # where they were voted (their play events are unknown).
    op.execute("""
        INSERT INTO battle_plays (battle_id, ending, ended_at)
        SELECT b.id, CASE WHEN v.id IS NULL THEN NULL ELSE 'voted' END, v.created_at
        FROM battles b JOIN raters r ON r.id = b.rater_id
        LEFT JOIN votes v ON v.battle_id = b.id AND v.rater_id = b.rater_id
        WHERE r.kind = 'human'
    """)


def downgrade() -> None:
    op.drop_table("battle_plays")
