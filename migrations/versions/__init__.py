"""Alembic revisions; one file per revision, named YYYY_MM_DD_NNNN_slug.py."""
