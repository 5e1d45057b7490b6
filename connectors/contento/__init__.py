"""Contento (Content API v1, read-only): a site's assets as a source."""

from connectors.contento.config import ContentoConfig
from connectors.contento.connector import READ_ONLY, ContentoConnector

__all__ = ["READ_ONLY", "ContentoConfig", "ContentoConnector"]
