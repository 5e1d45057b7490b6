"""Named crash points for the kill-and-resume tests.

``ASSETFERRY_CRASH_AT=upload.after:3`` makes the process SIGKILL itself the third time it
passes ``crash_point("upload.after")``: no cleanup, no flush, as a power cut or OOM kill would.
Unset (the normal case), a crash point costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_hits: Counter[str] = Counter()


def crash_point(name: str) -> None:
    spec = os.environ.get("ASSETFERRY_CRASH_AT")
    if not spec:
        return
    point, _, count = spec.partition(":")
    if point != name:
        return
    _hits[name] += 1
    if _hits[name] >= int(count or "1"):
        os.kill(os.getpid(), signal.SIGKILL)
