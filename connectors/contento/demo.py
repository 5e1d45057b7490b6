"""The Contento emulator as ``assetferry emulate`` and ``demo`` drive it (fixed test keys)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from connectors.contento.emulator import DOCUMENTED_RATE_PER_MINUTE, ContentoEmulator
from connectors.emulation import ASGIApp
from connectors.plugin import DemoFile, EmulatorSettings

SITE_ID = "s_01jDSh2WkN8Kp6SvRA8Ne5CJ69"
TOKEN = "contento-emulator-token"
CACHE_SECONDS = 30.0
"""The real API caches every response for 30 s (facts §4.3): rehearsals see the same."""


class ContentoDemo:
    """A Contento site with the demo's site id and token; rate limits in requests/minute."""

    def __init__(self, settings: EmulatorSettings) -> None:
        per_minute = None if settings.unlimited else settings.rate_limit or (
            DOCUMENTED_RATE_PER_MINUTE)
        self.emulator = ContentoEmulator(
            site_id=SITE_ID, token=TOKEN,
            rate_limit=per_minute / 60 if per_minute else None,
            cache_seconds=0.0 if settings.unlimited else CACHE_SECONDS,
        )
        self.folders: dict[str, str] = {}
        """Folder id -> path, for the job file's ``folders`` (the API cannot tell them)."""

    @property
    def app(self) -> ASGIApp:
        return self.emulator.app

    @property
    def env(self) -> Mapping[str, str]:
        return {"CONTENTO_TOKEN": TOKEN}

    @property
    def credentials(self) -> str:
        table = "".join(f'\n  "{fid}" = "{path}"' for fid, path in self.folders.items())
        return (f"site_id {SITE_ID}, token {TOKEN}; base_url is this URL + /api; responses "
                "are cached for 30 s like the real API"
                + (f"; its folders, for the job file's [source.folders]:{table}" if table else ""))

    def seed(self, files: Iterable[DemoFile]) -> None:
        """One Contento folder per sample folder path (the name is its last part); the
        sample's alt text becomes the description, its title the name."""
        ids = {path: fid for fid, path in self.folders.items()}
        for f in files:
            path = "/".join(f.folder)
            if f.folder and path not in ids:
                ids[path] = self.emulator.add_folder(f.folder[-1])
                self.folders[ids[path]] = path
            self.emulator.add_asset(f.name, f.data, name=f.title, description=f.alt,
                                    folder_id=ids.get(path), content_type=f.content_type)

    def job_section(self, base_url: str) -> str:
        folders = ", ".join(f'"{fid}" = "{path}"' for fid, path in self.folders.items())
        return (f'connector = "contento"\nsite_id = "{SITE_ID}"\n'
                f'token = "${{CONTENTO_TOKEN}}"\nbase_url = "{base_url}/api"\n'
                f"folders = {{ {folders} }}\n")

    def holdings(self) -> tuple[int, int]:
        return len(self.emulator.assets), len(self.emulator.folders)

    def close(self) -> None:
        self.emulator.close()
