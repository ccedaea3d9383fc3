"""Thin adapters over remote storage services (S3 and compatible endpoints)."""
