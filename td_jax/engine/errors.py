"""The user-error type of the engine and the command line.

A ``BenchError`` is the user's to fix (a bad name, value, path, label or input file): the
command line prints its message as one line and exits with status 2. Anything else is a bug
and keeps its traceback (exit status 1).
"""

from __future__ import annotations


class BenchError(ValueError):
    """A problem with the user's input: reported as one line, exit status 2."""
