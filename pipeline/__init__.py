"""The pipeline: the command line, the plan, the run, reports (imports everything else).

Start-up (issue 12): two libraries import Rich (and Pygments) at import time for features we
never use, about a fifth of every command's import time together:

- ``structlog.dev`` / ``structlog.tracebacks``, for Rich tracebacks; our log renderers format
  exceptions as plain text (``pipeline.logs``). So ``structlog`` is imported here first, with
  Rich hidden from it.
- ``httpx`` imports its own command-line client (``httpx._main``: Rich, Pygments, click) when
  they are installed; we only use its library. ``httpx._main`` is marked as not importable,
  so ``httpx.main`` is httpx's own stub saying the CLI's dependencies are missing (the
  ``httpx`` command, another process, is not affected).

The progress display (``pipeline.console``) imports Rich itself when a command shows one.
"""

from __future__ import annotations

import sys

if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

if "structlog" not in sys.modules and "rich" not in sys.modules:
    sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` -> ImportError
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]
