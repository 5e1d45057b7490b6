"""Small text helpers shared by the reports and the command line (imports nothing of ours,
so ``status`` can use them without loading the report and plan modules)."""

from __future__ import annotations


def one_line(text: str) -> str:
    """A name or reason on one line: control characters (a newline in a file name) escaped.

    Keeps tables and line-per-item logs aligned whatever the file names hold.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
