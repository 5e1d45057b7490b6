"""The Storyblok emulator as ``assetferry emulate`` and ``demo`` drive it (fixed test keys)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from connectors.emulation import ASGIApp
from connectors.plugin import DemoFile, EmulatorSettings
from connectors.storyblok.emulator import StoryblokEmulator

TOKEN = "sb-emulator-token"
DOCUMENTED_RATE = 3.0
"""MAPI requests per second on the Starter plan (cms-api-facts.md, Storyblok)."""


def _focus(value: str | None) -> str | None:
    # Storyblok keeps focus as a pixel box "x1xy1:x2xy2"; the sample images are ~64x48
    return "32x24:33x25" if value else None


def seed(emu: StoryblokEmulator, files: Iterable[DemoFile]) -> None:
    """Add ``files`` to ``emu``, folders as needed; German alt text as ``alt__i18n__de``."""
    ids: dict[tuple[str, ...], int | None] = {(): None}
    for f in files:
        for depth in range(1, len(f.folder) + 1):
            path = f.folder[:depth]
            if path not in ids:
                ids[path] = emu.add_folder(path[-1], ids[path[:-1]])
        meta = {"alt__i18n__de": f.alt_de} if f.alt_de else None
        emu.add_asset(f.name, f.data, folder_id=ids[f.folder], alt=f.alt, title=f.title,
                      copyright="© assetferry demo" if f.alt else None,
                      focus=_focus(f.focus), tags=f.tags, meta_data=meta,
                      content_type=f.content_type)


class StoryblokDemo:
    """A Storyblok emulator with the demo's token; its space is ``settings.space_id`` or a
    random one (each emulator its own space and ids)."""

    def __init__(self, settings: EmulatorSettings) -> None:
        rate = None if settings.unlimited else settings.rate_limit or DOCUMENTED_RATE
        self.emulator = StoryblokEmulator(space_id=settings.space_id, token=TOKEN,
                                          rate_limit=rate)

    @property
    def app(self) -> ASGIApp:
        return self.emulator.app

    @property
    def env(self) -> Mapping[str, str]:
        return {"STORYBLOK_TOKEN": TOKEN}

    @property
    def credentials(self) -> str:
        return f"space_id {self.emulator.space_id}, token {TOKEN}"

    def seed(self, files: Iterable[DemoFile]) -> None:
        seed(self.emulator, files)

    def job_section(self, base_url: str) -> str:
        return (f'connector = "storyblok"\nspace_id = {self.emulator.space_id}\n'
                f'token = "${{STORYBLOK_TOKEN}}"\nbase_url = "{base_url}"\n'
                "requests_per_second = 20\n")

    def holdings(self) -> tuple[int, int]:
        live = [a for a in self.emulator.assets.values() if a.get("deleted_at") is None]
        return len(live), len(self.emulator.folders)

    def close(self) -> None:
        self.emulator.close()
