"""The text log line: structlog's ConsoleRenderer output, rendered by our cheaper
:class:`pipeline.logs.ConsoleLines` (issue 12: one line per asset)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import structlog

from pipeline import logs

EVENTS: list[dict[str, Any]] = [
    {"timestamp": "2026-11-30T10:07:03.836579Z", "level": "info", "event": "load.done",
     "source_id": "d0000/file-000499.txt", "op": "create", "target_id": "blta40d",
     "bytes": 203, "route": "local:/tmp/lib->contentstack:blt01@main", "run_id": 1},
    {"level": "warning", "event": "a very long event name that is longer than thirty chars",
     "error": "two words", "quote": "it's", "eq": "a=b", "tab": "a\tb", "nl": "a\nb",
     "dq": 'say "x"', "cr": "a\rb"},
    {"event": "", "empty": "", "none": None, "float": 1.5, "true": True,
     "list": [1, "a b"], "dict": {"k": "v"}, "path": Path("/tmp/x y"), "unicode": "café"},
    {"timestamp": "", "level": "debug", "event": "x"},
    {"level": "error", "timestamp": "t", "event": 42, "z": 1, "a": 2},
    {"level": "critical"},
    {},
    {"event": "with a logger", "logger": "pipeline.run"},
    {"event": "stack", "stack": "Stack (most recent call last):\n  here"},
]


@pytest.mark.parametrize("event", EVENTS)
def test_the_line_is_consolerenderers_byte_for_byte(event: dict[str, Any]) -> None:
    ours = logs.ConsoleLines()(None, "info", dict(event))
    theirs = structlog.dev.ConsoleRenderer(
        colors=False, sort_keys=False,
        exception_formatter=structlog.dev.plain_traceback)(None, "info", dict(event))
    assert ours == theirs


def test_a_traceback_still_renders_through_consolerenderer() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        info = sys.exc_info()
    line = logs.ConsoleLines()(None, "debug", {"event": "run.crashed.traceback",
                                               "level": "debug", "exc_info": info})
    assert line.startswith("[debug    ] run.crashed.traceback")
    assert "ValueError: boom" in line
    assert "Traceback" in line


def test_the_configured_text_log_uses_it(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("text")
    structlog.get_logger("t").info("load.done", source_id="a b.txt", bytes=3, token="s3cret")
    err = capsys.readouterr().err
    assert "[info     ] load.done                      source_id='a b.txt' bytes=3 " \
           "token=[redacted]" in err
    assert "s3cret" not in err
