"""Storyblok Management API (MAPI v1) connector: asset folders and assets of one space."""

from connectors.storyblok.config import StoryblokConfig
from connectors.storyblok.connector import StoryblokConnector

__all__ = ["StoryblokConfig", "StoryblokConnector"]
