"""structlog set-up: readable lines on a terminal or in a log file, JSON for cron."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

SECRET_KEYS = frozenset({"token", "authtoken", "authorization", "management_token",
                         "asset_token", "api_key", "password", "delivery_token",
                         "access_token"})


def _drop_secrets(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Last line of defence: a key that names a secret never reaches the output."""
    for key in list(event):
        if key.lower() in SECRET_KEYS:
            event[key] = "[redacted]"
    return event


_NEEDS_REPR = re.compile("[ \t=\r\n\"']")
"""A string value holding one of these is quoted (its ``repr``), as ConsoleRenderer does."""


class ConsoleLines:
    """The text log line: what ``structlog.dev.ConsoleRenderer(colors=False,
    sort_keys=False)`` renders, byte for byte, at a fraction of its cost (issue 12: one
    line per asset cost about 0.17 ms of CPU, 5% of an upload's).

    ``timestamp [level    ] event<padded to 30> key=value ...`` in the event's key order; a
    string value with a space, tab, ``=``, quote or line break is shown as its ``repr``, any
    other value as its ``repr``. An event with a traceback, a stack or a logger name goes
    through ConsoleRenderer itself (rare: debug and errors).
    """

    _RARE = frozenset({"stack", "exception", "exc_info", "logger", "logger_name"})

    def __init__(self) -> None:
        self.full = structlog.dev.ConsoleRenderer(
            colors=False, sort_keys=False, exception_formatter=structlog.dev.plain_traceback)
        levels = structlog.dev.ConsoleRenderer.get_default_level_styles(colors=False)
        self._level_width = len(max(levels, key=len))
        self._event_width = structlog.dev._EVENT_WIDTH

    def __call__(self, logger: Any, name: str, event: dict[str, Any]) -> str:
        if not self._RARE.isdisjoint(event):
            return self.full(logger, name, event)
        parts: list[str] = []
        if "timestamp" in event:
            parts.append(str(event.pop("timestamp")))
        if "level" in event:
            parts.append(f"[{event.pop('level'):<{self._level_width}}]")
        if "event" in event:
            parts.append(f"{event.pop('event')!s:<{self._event_width}}")
        for key, value in event.items():
            if isinstance(value, str) and not _NEEDS_REPR.search(value):
                parts.append(f"{key}={value}")
            else:
                parts.append(f"{key}={value!r}")
        return " ".join(p for p in parts if p).rstrip(" ")


class StderrLogger:
    """Writes each line to whatever ``sys.stderr`` is at that moment.

    Not bound at configure time: Rich's live display redirects stderr so that warnings print
    above it, and a test's captured stream may be closed once that test is over.
    """

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    log = debug = info = warn = warning = error = err = critical = exception = fatal = msg


def _stderr_logger(*_: Any) -> StderrLogger:
    return StderrLogger()


def configure(log_format: str = "text", *, verbose: bool = False,
              terminal: bool = False) -> None:
    """``terminal``: a progress bar shows the progress, so only warnings and errors print."""
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_secrets,
    ]
    # tracebacks (debug only: unexpected errors) as plain text, never with local variables
    if log_format == "json":
        processors.append(structlog.processors.format_exc_info)
        processors.append(structlog.processors.JSONRenderer())
    else:
        processors.append(ConsoleLines())
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.DEBUG if verbose else logging.WARNING if terminal else logging.INFO),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def quiet() -> None:
    """Only warnings and errors (the demo prints its own story)."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
