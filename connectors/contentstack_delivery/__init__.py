"""Contentstack through the Content Delivery API v3: a stack's published assets, read-only."""

from connectors.contentstack_delivery.config import ContentstackDeliveryConfig
from connectors.contentstack_delivery.connector import READ_ONLY, ContentstackDeliveryConnector

__all__ = ["READ_ONLY", "ContentstackDeliveryConfig", "ContentstackDeliveryConnector"]
