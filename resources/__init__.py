"""Dagster resources: configuration and connections that assets and sensors share."""

from resources.storage import LandingResource, StorageResource

__all__ = ["LandingResource", "StorageResource"]
