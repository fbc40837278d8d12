"""The governance verbs, gathered from their modules: consent, erasure, retention and review."""

from __future__ import annotations

from facetrust.service.consent import ConsentGrant, get_consent, record_consent, revoke_consent, show_consent
from facetrust.service.erasure import delete_collection, erase, erase_keys, governed_verify_receipt, verify_receipt
from facetrust.service.retention import rotate_templates, sweep_retention
from facetrust.service.review import REVIEW_DECISIONS, record_review

__all__ = [
    "REVIEW_DECISIONS",
    "ConsentGrant",
    "delete_collection",
    "erase",
    "erase_keys",
    "get_consent",
    "governed_verify_receipt",
    "record_consent",
    "record_review",
    "revoke_consent",
    "rotate_templates",
    "show_consent",
    "sweep_retention",
    "verify_receipt",
]
