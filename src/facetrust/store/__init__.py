"""Storage of collections, faces and users (SQLite by default)."""

from facetrust.store.sqlite import CollectionRow, FaceRow, NewFace, Store, UserRow

__all__ = ["CollectionRow", "FaceRow", "NewFace", "Store", "UserRow"]
