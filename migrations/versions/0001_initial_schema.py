"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 00:57:48.323996
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


APPEND_ONLY_FUNCTION = """
CREATE FUNCTION votes_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the vote log is append-only: % on votes is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$
"""


def upgrade() -> None:
    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('errors', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'running', 'done', 'failed')", name=op.f('ck_jobs_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    op.create_table('leaderboard_snapshots',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('slice_key', sa.String(length=400), nullable=False),
    sa.Column('method', sa.String(length=32), nullable=False),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('max_vote_id', sa.BigInteger(), nullable=False),
    sa.Column('vote_count', sa.BigInteger(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leaderboard_snapshots'))
    )
    op.create_index('ix_snapshots_lookup', 'leaderboard_snapshots', ['slice_key', 'method', 'id'], unique=False)
    op.create_table('prompts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('dataset', sa.String(length=200), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('task', sa.String(length=200), nullable=False),
    sa.Column('category', sa.String(length=200), nullable=True),
    sa.Column('task_description', sa.Text(), nullable=True),
    sa.Column('language', sa.String(length=32), nullable=False),
    sa.Column('text_cn', sa.Text(), nullable=True),
    sa.Column('level', sa.String(length=2), nullable=False),
    sa.Column('domain', sa.String(length=64), nullable=False),
    sa.Column('emotion', sa.String(length=64), nullable=True),
    sa.Column('sarcasm', sa.String(length=64), nullable=True),
    sa.Column('age', sa.String(length=64), nullable=True),
    sa.Column('gender', sa.String(length=64), nullable=True),
    sa.Column('contrast_group', sa.String(length=200), nullable=True),
    sa.Column('audio_key', sa.String(length=200), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("domain IN ('education', 'social companionship', 'entertainment', 'medical consultation')", name=op.f('ck_prompts_domain')),
    sa.CheckConstraint("level IN ('L1', 'L2', 'L3', 'L4')", name=op.f('ck_prompts_level')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prompts')),
    sa.UniqueConstraint('key', name=op.f('uq_prompts_key'))
    )
    op.create_index(op.f('ix_prompts_contrast_group'), 'prompts', ['contrast_group'], unique=False)
    op.create_index(op.f('ix_prompts_dataset'), 'prompts', ['dataset'], unique=False)
    op.create_index(op.f('ix_prompts_task'), 'prompts', ['task'], unique=False)
    op.create_table('raters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('human', 'judge')", name=op.f('ck_raters_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_raters')),
    sa.UniqueConstraint('kind', 'name', name=op.f('uq_raters_kind_name'))
    )
    op.create_table('speech_models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('organisation', sa.String(length=200), nullable=True),
    sa.Column('backbone', sa.String(length=200), nullable=True),
    sa.Column('speech_encoder', sa.String(length=200), nullable=True),
    sa.Column('speech_decoder', sa.String(length=200), nullable=True),
    sa.Column('sector', sa.String(length=16), nullable=True),
    sa.Column('access', sa.String(length=16), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('input_sample_rate', sa.Integer(), nullable=False),
    sa.Column('adapter', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("access IS NULL OR access IN ('open', 'closed')", name=op.f('ck_speech_models_access')),
    sa.CheckConstraint("sector IS NULL OR sector IN ('industry', 'academia')", name=op.f('ck_speech_models_sector')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_speech_models')),
    sa.UniqueConstraint('name', name=op.f('uq_speech_models_name'))
    )
    op.create_table('responses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('prompt_id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('audio_key', sa.String(length=200), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('transcript', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('model_version', sa.String(length=200), nullable=True),
    sa.Column('latency_ms', sa.Float(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'ready', 'failed')", name=op.f('ck_responses_status')),
    sa.ForeignKeyConstraint(['model_id'], ['speech_models.id'], name=op.f('fk_responses_model_id_speech_models')),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompts.id'], name=op.f('fk_responses_prompt_id_prompts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_responses')),
    sa.UniqueConstraint('prompt_id', 'model_id', name=op.f('uq_responses_prompt_id_model_id'))
    )
    op.create_index(op.f('ix_responses_model_id'), 'responses', ['model_id'], unique=False)
    op.create_index(op.f('ix_responses_prompt_id'), 'responses', ['prompt_id'], unique=False)
    op.create_table('battles',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('prompt_id', sa.Integer(), nullable=False),
    sa.Column('response_a_id', sa.Integer(), nullable=False),
    sa.Column('response_b_id', sa.Integer(), nullable=False),
    sa.Column('model_a_id', sa.Integer(), nullable=False),
    sa.Column('model_b_id', sa.Integer(), nullable=False),
    sa.Column('rater_id', sa.Integer(), nullable=False),
    sa.Column('served_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('model_a_id <> model_b_id', name=op.f('ck_battles_two_models')),
    sa.ForeignKeyConstraint(['model_a_id'], ['speech_models.id'], name=op.f('fk_battles_model_a_id_speech_models')),
    sa.ForeignKeyConstraint(['model_b_id'], ['speech_models.id'], name=op.f('fk_battles_model_b_id_speech_models')),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompts.id'], name=op.f('fk_battles_prompt_id_prompts')),
    sa.ForeignKeyConstraint(['rater_id'], ['raters.id'], name=op.f('fk_battles_rater_id_raters')),
    sa.ForeignKeyConstraint(['response_a_id'], ['responses.id'], name=op.f('fk_battles_response_a_id_responses')),
    sa.ForeignKeyConstraint(['response_b_id'], ['responses.id'], name=op.f('fk_battles_response_b_id_responses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_battles')),
    sa.UniqueConstraint('token', name=op.f('uq_battles_token'))
    )
    op.create_index('ix_battles_rater_served', 'battles', ['rater_id', 'served_at'], unique=False)
    op.create_table('votes',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('battle_id', sa.BigInteger(), nullable=False),
    sa.Column('rater_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("outcome IN ('a', 'b', 'tie', 'both_bad')", name=op.f('ck_votes_outcome')),
    sa.ForeignKeyConstraint(['battle_id'], ['battles.id'], name=op.f('fk_votes_battle_id_battles')),
    sa.ForeignKeyConstraint(['rater_id'], ['raters.id'], name=op.f('fk_votes_rater_id_raters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_votes')),
    sa.UniqueConstraint('battle_id', 'rater_id', name=op.f('uq_votes_battle_id_rater_id'))
    )
    op.create_index(op.f('ix_votes_rater_id'), 'votes', ['rater_id'], unique=False)

    # The vote log is the source of truth: refuse UPDATE and DELETE on it.
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(
        "CREATE TRIGGER votes_append_only BEFORE UPDATE OR DELETE ON votes "
        "FOR EACH ROW EXECUTE FUNCTION votes_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS votes_append_only ON votes")
    op.execute("DROP FUNCTION IF EXISTS votes_append_only()")
    op.drop_index(op.f('ix_votes_rater_id'), table_name='votes')
    op.drop_table('votes')
    op.drop_index('ix_battles_rater_served', table_name='battles')
    op.drop_table('battles')
    op.drop_index(op.f('ix_responses_prompt_id'), table_name='responses')
    op.drop_index(op.f('ix_responses_model_id'), table_name='responses')
    op.drop_table('responses')
    op.drop_table('speech_models')
    op.drop_table('raters')
    op.drop_index(op.f('ix_prompts_task'), table_name='prompts')
    op.drop_index(op.f('ix_prompts_dataset'), table_name='prompts')
    op.drop_index(op.f('ix_prompts_contrast_group'), table_name='prompts')
    op.drop_table('prompts')
    op.drop_index('ix_snapshots_lookup', table_name='leaderboard_snapshots')
    op.drop_table('leaderboard_snapshots')
    op.drop_table('jobs')
