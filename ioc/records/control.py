"""control record support (being written)."""
