"""`pipeline.aio.run_async`: the commands' results are never repr'd on the way out."""

from __future__ import annotations

import pytest

from pipeline.aio import run_async


class Costly:
    """A result whose repr counts its calls (a Plan of 100,000 actions costs seconds)."""

    reprs = 0

    def __repr__(self) -> str:
        Costly.reprs += 1
        return "Costly()"


def test_the_result_comes_back_without_being_reprd() -> None:
    """asyncio's runner (CPython 3.11) reprs the finished main task, result included, when it
    restores the SIGINT handler; plain ``anyio.run`` made 2 reprs here."""
    Costly.reprs = 0
    value = Costly()

    async def main() -> Costly:
        return value

    assert run_async(main) is value
    assert Costly.reprs == 0


def test_what_main_raises_comes_through() -> None:
    async def main() -> None:
        raise LookupError("gone")

    with pytest.raises(LookupError, match="gone"):
        run_async(main)
