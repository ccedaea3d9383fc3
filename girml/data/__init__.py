"""Data stages: collecting source images (``collect``) and what builds on them."""
