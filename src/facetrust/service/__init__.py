"""The orchestrator of collection operations (``FaceService``) and its result types."""

from facetrust.people.types import NameResult, PeoplePage, Person
from facetrust.service.faceservice import FaceService
from facetrust.service.review_queue import ReviewCandidate, ReviewItem, ReviewPage
from facetrust.service.types import (
    AssociateResult,
    CollectionInfo,
    CollectionPage,
    DeleteFacesResult,
    FacePage,
    FaceSearchMatch,
    FaceSearchResult,
    IndexedFace,
    IndexResult,
    StoredFace,
    UnindexedFace,
    UnsuccessfulFace,
    UserInfo,
    UserPage,
    UserSearchMatch,
    UserSearchResult,
)

__all__ = [
    "AssociateResult",
    "CollectionInfo",
    "CollectionPage",
    "DeleteFacesResult",
    "FacePage",
    "FaceSearchMatch",
    "FaceSearchResult",
    "FaceService",
    "IndexResult",
    "IndexedFace",
    "NameResult",
    "PeoplePage",
    "Person",
    "ReviewCandidate",
    "ReviewItem",
    "ReviewPage",
    "StoredFace",
    "UnindexedFace",
    "UnsuccessfulFace",
    "UserInfo",
    "UserPage",
    "UserSearchMatch",
    "UserSearchResult",
]
