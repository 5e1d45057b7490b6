"""Untrusted JSON (a source's metadata manifest, an API's response body) decoded defensively:
one place, shared by the local folder connector and connectors/http.py.

`json.loads` accepts two things that later break far from the input: a lone UTF-16 surrogate
written as a valid escape (``"\\ud800"``; RFC 8259 §8.2 allows it, but the string cannot be
encoded as UTF-8, so logging, hashing or storing it raised ``UnicodeEncodeError``), and deep
nesting (100,000 ``[``), which raises ``RecursionError`` rather than a ``ValueError``.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
"""A ``\uD800``-``\uDFFF`` escape in the raw text: the only way a lone surrogate gets in
(raw surrogate bytes are not UTF-8); only then is the decoded value walked."""


class UntrustedJSONError(ValueError):
    """The text is not usable JSON; ``str()`` reads after the file or URL it names:
    ``"is damaged or too deeply nested JSON"``. ``where``: the JSON path of a lone surrogate
    (``assets["a.jpg"].title``), empty for a whole-document fault."""

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(message)
        self.where = where


def loads(data: bytes | str) -> Any:
    """``json.loads`` of ``data`` (bytes: UTF-8), checked: UntrustedJSONError (a ValueError)
    for deep nesting; ``json.JSONDecodeError``/``UnicodeDecodeError`` (ValueErrors) as usual.
    Lone surrogates are NOT refused here: see :func:`lone_surrogate` (a caller may refuse one
    item and let the others go on)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise UntrustedJSONError("is damaged or too deeply nested JSON (nesting deeper than "
                                 "Python's recursion limit)") from None


def loads_lenient(data: bytes) -> tuple[Any, bool]:
    """:func:`loads` of bytes whose strings may hold bytes that are not UTF-8: each such
    byte is decoded as a lone surrogate (``surrogateescape``), so :func:`lone_surrogate`
    finds it with the lone surrogates written as escapes, and a caller can refuse the one
    item holding it. Returns ``(value, suspect)``: ``suspect`` when a lone surrogate may be
    in ``value`` (walk it). ValueErrors as :func:`loads`."""
    try:
        text, bad = data.decode("utf-8"), False
    except UnicodeDecodeError:
        text, bad = data.decode("utf-8", "surrogateescape"), True
    return loads(text), bad or bool(_SURROGATE_ESCAPE.search(data))


def lone_surrogate(value: Any, where: str = "") -> str | None:
    """The JSON path (``["a.jpg"].title``, ``[3]``) of the first string (key or value) in
    ``value`` holding a lone UTF-16 surrogate (U+D800..U+DFFF), or None. Iterative: safe on
    any depth ``loads`` returned."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return path or "(the value)"
        elif isinstance(item, dict):
            for key, sub in reversed(list(item.items())):
                shown = f".{key}" if isinstance(key, str) and key.isidentifier() \
                    else f"[{key!a}]"
                if isinstance(key, str) and not _encodable(key):
                    return f"{path}{shown} (its key)"
                stack.append((sub, path + shown))
        elif isinstance(item, list):
            stack.extend((sub, f"{path}[{i}]") for i, sub in reversed(list(enumerate(item))))
    return None


def checked_loads(data: bytes | str) -> Any:
    """:func:`loads` that also refuses a lone surrogate anywhere (UntrustedJSONError naming
    its JSON path): for a document read whole (a manifest, an API response). A pair
    (``\ud83d\ude00``) decodes to one character and passes."""
    value = loads(data)
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    where = lone_surrogate(value) if _SURROGATE_ESCAPE.search(raw) else None
    if where is not None:
        raise UntrustedJSONError(f"holds a lone UTF-16 surrogate (an invalid \\uD8xx-\\uDFxx "
                                 f"escape) at {where}", where=where)
    return value


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
