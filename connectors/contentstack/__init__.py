"""Contentstack (Content Management API v3): stack assets and asset folders."""

from connectors.contentstack.config import ContentstackConfig
from connectors.contentstack.connector import ContentstackConnector

__all__ = ["ContentstackConfig", "ContentstackConnector"]
