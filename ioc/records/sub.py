"""sub record support (being written)."""
