"""The Webflow emulator as ``assetferry emulate`` and ``demo`` drive it (fixed test keys)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from connectors.emulation import ASGIApp
from connectors.plugin import DemoFile, EmulatorSettings
from connectors.webflow.emulator import WebflowEmulator

SITE_ID = "6390c49674a71f84b51a08d8"
TOKEN = "wf-emulator-token"
LOCALE_DE = "65427cf400e02b306eaa04a0"
"""The emulated site's secondary locale (German), as Webflow's Localization names it."""
DEMO_RATE = 120.0
"""Requests per minute: the CMS/Business plans' documented limit (Starter and Basic: 60)."""


def seed(emu: WebflowEmulator, files: Iterable[DemoFile]) -> None:
    """Add ``files`` to ``emu``, folders as needed; German alt text under :data:`LOCALE_DE`."""
    ids: dict[tuple[str, ...], str | None] = {(): None}
    for f in files:
        for depth in range(1, len(f.folder) + 1):
            path = f.folder[:depth]
            if path not in ids:
                ids[path] = emu.add_folder(path[-1], ids[path[:-1]])
        emu.add_asset(f.name, f.data, folder_id=ids[f.folder], alt=f.alt,
                      alt_by_locale={LOCALE_DE: f.alt_de} if f.alt_de else None,
                      content_type=f.content_type)


class WebflowDemo:
    """A Webflow emulator with the demo's site id, token and German locale."""

    def __init__(self, settings: EmulatorSettings) -> None:
        rate = None if settings.unlimited else settings.rate_limit or DEMO_RATE
        self.emulator = WebflowEmulator(site_id=SITE_ID, token=TOKEN, locales=(LOCALE_DE,),
                                        rate_limit_per_minute=rate)
        self._rate = rate

    @property
    def app(self) -> ASGIApp:
        return self.emulator.app

    @property
    def env(self) -> Mapping[str, str]:
        return {"WEBFLOW_TOKEN": TOKEN}

    @property
    def credentials(self) -> str:
        return f"site_id {SITE_ID}, token {TOKEN}, locale de = {LOCALE_DE}"

    def seed(self, files: Iterable[DemoFile]) -> None:
        seed(self.emulator, files)

    def job_section(self, base_url: str) -> str:
        rate = f"rate_limit_per_minute = {self._rate:g}\n" if self._rate else (
            "rate_limit_per_minute = 6000\n")
        return (f'connector = "webflow"\nsite_id = "{SITE_ID}"\n'
                f'token = "${{WEBFLOW_TOKEN}}"\nbase_url = "{base_url}"\n{rate}'
                f'locales = {{de = "{LOCALE_DE}"}}\n')

    def holdings(self) -> tuple[int, int]:
        return len(self.emulator.assets), len(self.emulator.folders)

    def close(self) -> None:
        self.emulator.close()
