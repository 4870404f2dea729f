"""Soft device support of the sub records (being written)."""
