"""Soft device support of int64in/out, lsi/lso, mbbiDirect/mbboDirect (being written)."""
