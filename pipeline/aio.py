"""`run_async`: ``anyio.run`` for the commands, without a repr of what they return.

CPython 3.11's asyncio runner (which ``anyio.run`` uses) restores the SIGINT handler after
the main task finished, and on the way builds the repr of that handler, which holds the task:
``signal.getsignal``/``signal.signal`` try ``Handlers(handler)``, and the failed enum lookup
formats ``repr(handler)``, task and result included. For ``plan`` the result is a `Plan` of
100,000 actions: its dataclass repr took seconds and hundreds of MiB, twice, before being
cut to a few characters. Wrapped in a box with a fixed repr, the result costs nothing there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import anyio

T = TypeVar("T")


class _Box(Generic[T]):
    """A command's result, with a repr that does not look inside."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"<{type(self.value).__name__} result>"


def run_async(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main()`` in a new event loop (``anyio.run``) and return its result.

    Raises what ``main`` raises. The result is never repr'd on the way out (see the module
    docstring), however large it is.
    """

    async def boxed() -> _Box[T]:
        return _Box(await main())

    return anyio.run(boxed).value
