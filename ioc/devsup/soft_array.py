"""Soft device support of the array records (being written)."""
