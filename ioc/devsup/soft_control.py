"""Soft device support of the control records (being written)."""
