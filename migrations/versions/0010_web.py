"""web: attachments stored in the database

Revision ID: 0010_web
Revises: 0009_security

Files uploaded to `attachment` fields: bytes, sha256 (the form data holds `sha256:<hex>`, so the
trail's form hash covers the file), size, media type, original file name, uploader, instance,
field and the trail event of the action that attached them.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0010_web'
down_revision: Union[str, Sequence[str], None] = '0009_security'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'attachment',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('instance_id', sa.Integer(), nullable=False),
        sa.Column('field', sa.String(length=64), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('media_type', sa.String(length=100), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
        sa.Column('trail_event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'],
                                name=op.f('fk_attachment_instance_id_process_instance'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['trail_event_id'], ['trail_event.id'],
                                name=op.f('fk_attachment_trail_event_id_trail_event')),
        sa.ForeignKeyConstraint(['uploaded_by_id'], ['app_user.id'],
                                name=op.f('fk_attachment_uploaded_by_id_app_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_attachment')),
    )
    op.create_index('ix_attachment_instance', 'attachment', ['instance_id', 'field'], unique=False)
    op.create_index(op.f('ix_attachment_sha256'), 'attachment', ['sha256'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_attachment_sha256'), table_name='attachment')
    op.drop_index('ix_attachment_instance', table_name='attachment')
    op.drop_table('attachment')
