"""The Contentstack emulator as ``assetferry emulate`` and ``demo`` drive it (fixed test keys)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from connectors.contentstack.emulator import ContentstackEmulator
from connectors.emulation import ASGIApp
from connectors.plugin import DemoFile, EmulatorSettings

API_KEY = "blt0123456789abcdef"
TOKEN = "cs-emulator-token"
DOCUMENTED_RATE = 10.0
"""CMA requests per second per organization (cms-api-facts.md, Contentstack)."""
MAX_DEPTH = 5


class ContentstackDemo:
    """A Contentstack emulator with the demo's stack API key and management token."""

    def __init__(self, settings: EmulatorSettings) -> None:
        rate = None if settings.unlimited else settings.rate_limit or DOCUMENTED_RATE
        self.emulator = ContentstackEmulator(api_key=API_KEY, management_token=TOKEN,
                                             rate_limit=rate)

    @property
    def app(self) -> ASGIApp:
        return self.emulator.app

    @property
    def env(self) -> Mapping[str, str]:
        return {"CONTENTSTACK_MANAGEMENT_TOKEN": TOKEN}

    @property
    def credentials(self) -> str:
        return f"api_key {API_KEY}, management_token {TOKEN}"

    def seed(self, files: Iterable[DemoFile]) -> None:
        emu = self.emulator
        ids: dict[tuple[str, ...], str | None] = {(): None}
        for f in files:
            folder = f.folder[:MAX_DEPTH]  # a stack holds folders 5 levels deep at most
            for depth in range(1, len(folder) + 1):
                path = folder[:depth]
                if path not in ids:
                    ids[path] = emu.add_folder(path[-1], ids[path[:-1]])
            emu.add_asset(f.name, f.data, parent_uid=ids[folder], title=f.title,
                          description=f.alt, tags=f.tags, content_type=f.content_type)

    def job_section(self, base_url: str) -> str:
        return (f'connector = "contentstack"\napi_key = "{API_KEY}"\n'
                'management_token = "${CONTENTSTACK_MANAGEMENT_TOKEN}"\n'
                f'region = "eu"\nbase_url = "{base_url}"\nbranch = "main"\n')

    def holdings(self) -> tuple[int, int]:
        return len(self.emulator.assets), len(self.emulator.folders)

    def close(self) -> None:
        self.emulator.close()
