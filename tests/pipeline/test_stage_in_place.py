"""A local source's file is read in place: no temp copy, hashed only for the digests the
target reads, never deleted after the upload."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from connectors.base import DIGESTS, Asset, staged_digests
from connectors.errors import ItemError
from connectors.localfs import LocalConfig, LocalFolderConnector
from connectors.webflow.connector import WebflowConnector
from pipeline.stages import discard, stage


async def one_asset(root: Path, data: bytes) -> tuple[LocalFolderConnector, Asset]:
    root.mkdir()
    (root / "a.bin").write_bytes(data)
    source = LocalFolderConnector(LocalConfig(connector="local", path=root))
    [asset] = [a async for a in source.iter_assets()]
    return source, asset


async def test_a_local_file_is_staged_in_place_without_hashing(tmp_path: Path) -> None:
    source, asset = await one_asset(tmp_path / "src", b"x" * 1000)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    staged = await stage(source, asset, tmpdir, frozenset())
    assert staged.path == tmp_path / "src" / "a.bin"
    assert (staged.size, staged.md5, staged.sha256, staged.temporary) == (1000, "", "", False)
    assert list(tmpdir.iterdir()) == []  # no copy
    discard(staged)
    assert (tmp_path / "src" / "a.bin").read_bytes() == b"x" * 1000  # never deleted


async def test_only_the_digests_the_target_reads_are_computed(tmp_path: Path) -> None:
    source, asset = await one_asset(tmp_path / "src", b"hello")
    staged = await stage(source, asset, tmp_path, frozenset({"md5"}))
    assert staged.md5 == hashlib.md5(b"hello").hexdigest()  # noqa: S324
    assert staged.sha256 == ""
    both = await stage(source, asset, tmp_path, DIGESTS)
    assert both.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert staged_digests(WebflowConnector) == frozenset({"md5"})
    assert staged_digests(LocalFolderConnector) == frozenset()
    assert staged_digests(object()) == DIGESTS  # a target that does not say gets both


async def test_a_file_changed_since_the_listing_is_an_item_error(tmp_path: Path) -> None:
    source, asset = await one_asset(tmp_path / "src", b"hello")
    (tmp_path / "src" / "a.bin").write_bytes(b"hello, longer now")
    with pytest.raises(ItemError, match="listed 5"):
        await stage(source, asset, tmp_path, frozenset())
    (tmp_path / "src" / "a.bin").unlink()
    with pytest.raises(ItemError, match="no longer exists"):
        await stage(source, asset, tmp_path, frozenset())


@pytest.mark.parametrize("digests", [frozenset(), DIGESTS], ids=["stat", "hashed"])
@pytest.mark.parametrize("swap", ["folder", "fifo", "device"])
async def test_a_file_replaced_by_a_folder_fifo_or_device_says_what_it_is_now(
    tmp_path: Path, swap: str, digests: frozenset[str]
) -> None:
    """A source file replaced mid-run by a folder, FIFO or device is reported as what it is
    now, not as a size change ("sent 4096 bytes but listed 5"); a FIFO is never opened (the
    open would block until a writer came), whether staged in place or streamed by the local
    connector's ``open_asset``."""
    source, asset = await one_asset(tmp_path / "src", b"hello")
    path = tmp_path / "src" / "a.bin"
    path.unlink()
    if swap == "folder":
        path.mkdir()
        (path / "inner.txt").write_bytes(b"x")
        expected = "a.bin is now a folder, not a file"
    elif swap == "fifo":
        os.mkfifo(path)
        expected = r"a.bin is no longer a regular file \(a named pipe \(FIFO\)\)"
    else:
        try:
            os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero's
        except PermissionError:
            pytest.skip("making a device file needs root (CAP_MKNOD)")
        expected = r"a.bin is no longer a regular file \(a device file\)"
    # (a FIFO opened for reading would block here, until pytest's timeout)
    with pytest.raises(ItemError, match=expected):
        await stage(source, asset, tmp_path, digests)
    with pytest.raises(ItemError, match=expected):
        async with source.open_asset(asset) as chunks:
            [c async for c in chunks]


async def test_a_local_file_costs_one_worker_thread_hop_a_small_one_none(
    tmp_path: Path, thread_hops: list[object]
) -> None:
    """Finding the file (its path resolved through symlinks), its size check and its digests
    share one hop to a worker thread: each hop costs the event loop a hand-over and a wake-up
    (issue 12: two hops per file were 6% of an upload's CPU). A file listed at
    INLINE_STAGE_BYTES or less costs none: its stat and read cost less than the hop
    (``benchmarks/run.py --only overhead``: 0.82x to 0.96x of the minimal loop)."""
    from pipeline.stages import INLINE_STAGE_BYTES

    big, big_asset = await one_asset(tmp_path / "big", b"b" * (INLINE_STAGE_BYTES + 1))
    small, small_asset = await one_asset(tmp_path / "small", b"s" * INLINE_STAGE_BYTES)
    for digests in (frozenset(), DIGESTS):
        thread_hops.clear()
        staged = await stage(big, big_asset, tmp_path, digests)
        assert staged.size == INLINE_STAGE_BYTES + 1
        assert len(thread_hops) == 1, thread_hops
        thread_hops.clear()
        staged = await stage(small, small_asset, tmp_path, digests)
        assert staged.size == INLINE_STAGE_BYTES
        assert thread_hops == []
    assert staged.sha256 == hashlib.sha256(b"s" * INLINE_STAGE_BYTES).hexdigest()


class Streamed:
    """A source that has no local file: its bytes stream, in chunks of 64 KiB."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    @asynccontextmanager
    async def open_asset(self, asset: Asset) -> AsyncIterator[AsyncIterator[bytes]]:
        async def chunks() -> AsyncIterator[bytes]:
            for at in range(0, len(self.data), 64 * 1024):
                yield self.data[at:at + 64 * 1024]

        yield chunks()


async def test_a_streamed_small_file_is_copied_without_a_worker_thread_hop(
    tmp_path: Path, thread_hops: list[object]
) -> None:
    """The temp copy of a streamed file listed at INLINE_STAGE_BYTES or less is opened,
    written and closed on the event loop (issue 12: a hop for the open, one per chunk and
    one for the close, each two loop wake-ups and a GIL hand-over); a larger one, and the
    bytes past that size of one that sends more than it listed, are written in a thread."""
    from pipeline.stages import INLINE_STAGE_BYTES

    for size, in_thread in ((INLINE_STAGE_BYTES, 0), (3 * INLINE_STAGE_BYTES + 1, 5)):
        data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        asset = Asset(source_id="a.bin", filename="a.bin", folder_path=(), folder_id=None,
                      content_type="application/octet-stream", size=size)
        thread_hops.clear()
        staged = await stage(Streamed(data), asset, tmp_path, DIGESTS,  # type: ignore[arg-type]
                             in_place=False)
        assert len(thread_hops) == in_thread, thread_hops  # (big: open, 3 of 4 chunks, close)
        assert staged.path.read_bytes() == data
        assert staged.sha256 == hashlib.sha256(data).hexdigest()
        assert staged.md5 == hashlib.md5(data).hexdigest()  # noqa: S324 - the API's digest
        discard(staged)
    more = Asset(source_id="a.bin", filename="a.bin", folder_path=(), folder_id=None,
                 content_type="application/octet-stream", size=10)
    thread_hops.clear()
    with pytest.raises(ItemError, match="listed 10"):
        await stage(Streamed(b"y" * (2 * INLINE_STAGE_BYTES)), more, tmp_path, DIGESTS,  # type: ignore[arg-type]
                    in_place=False)
    assert len(thread_hops) == 2  # the chunk past a small file's size, the close
    assert list(tmp_path.glob("*.part")) == []


async def test_a_file_grown_past_its_listing_is_refused_on_either_path(tmp_path: Path) -> None:
    source, asset = await one_asset(tmp_path / "src", b"hello")
    (tmp_path / "src" / "a.bin").write_bytes(b"y" * (3 * 1024 * 1024))
    with pytest.raises(ItemError, match="listed 5"):
        await stage(source, asset, tmp_path, DIGESTS)
