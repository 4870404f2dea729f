"""array record support (being written)."""
