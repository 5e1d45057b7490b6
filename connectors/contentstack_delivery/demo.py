"""The Contentstack emulator's Delivery API as ``assetferry emulate`` and ``demo`` drive it.

The same stack as :class:`connectors.contentstack.demo.ContentstackDemo` (its seeding), served
through :attr:`~connectors.contentstack.emulator.ContentstackEmulator.delivery_app`, with every
demo asset published to ``production`` and one more, :data:`DRAFT`, left unpublished: it shows
that an unpublished asset is not read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from connectors.contentstack.demo import API_KEY, ContentstackDemo
from connectors.emulation import ASGIApp
from connectors.plugin import DemoFile, EmulatorSettings

DELIVERY_TOKEN = "cs-delivery-token"
ENVIRONMENT = "production"
DRAFT = "draft-not-published.txt"


class ContentstackDeliveryDemo(ContentstackDemo):
    """The demo stack, read with a delivery token of ``production``."""

    def __init__(self, settings: EmulatorSettings) -> None:
        super().__init__(settings)
        self.emulator.delivery_tokens = {DELIVERY_TOKEN: ENVIRONMENT}

    @property
    def app(self) -> ASGIApp:
        return self.emulator.delivery_app

    @property
    def env(self) -> Mapping[str, str]:
        return {"CONTENTSTACK_DELIVERY_TOKEN": DELIVERY_TOKEN}

    @property
    def credentials(self) -> str:
        return (f"api_key {API_KEY}, delivery_token {DELIVERY_TOKEN}, environment "
                f"{ENVIRONMENT} (every demo asset is published there but {DRAFT})")

    def seed(self, files: Iterable[DemoFile]) -> None:
        before = set(self.emulator.assets)
        super().seed(files)
        for uid in [uid for uid in self.emulator.assets if uid not in before]:
            self.emulator.publish(uid, [ENVIRONMENT])
        if not before:
            self.emulator.add_asset(DRAFT, b"never published\n", title="Draft")

    def job_section(self, base_url: str) -> str:
        return (f'connector = "contentstack-delivery"\napi_key = "{API_KEY}"\n'
                'delivery_token = "${CONTENTSTACK_DELIVERY_TOKEN}"\n'
                f'environment = "{ENVIRONMENT}"\nbase_url = "{base_url}"\n')
