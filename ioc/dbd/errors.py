"""Errors raised while reading database files."""


class DbLoadError(Exception):
    """A problem in a database file, reported as ``file:line: message``."""

    def __init__(self, filename: str, lineno: int, message: str):
        super().__init__(f"{filename}:{lineno}: {message}")
        self.filename = filename
        self.lineno = lineno
        self.message = message
