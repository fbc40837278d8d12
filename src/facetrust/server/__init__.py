"""The HTTP server: Amazon Rekognition's JSON protocol over FaceService (``create_app``)."""

from facetrust.server.app import create_app

__all__ = ["create_app"]
