"""Deterministic ids: the same entity, start and source always give the same session id."""

from __future__ import annotations

import hashlib
import uuid

SESSION_NAMESPACE = uuid.UUID("6f1c1a52-4c35-4a7e-9d55-1c7c3f0f2b9e")
_PREFIX = SESSION_NAMESPACE.bytes


def session_id(entity_id: str, start_iso: str, source: str = "detected") -> str:
    """uuid5(SESSION_NAMESPACE, "source|entity|start") as text, built from the SHA-1 digest directly: three times
    faster than uuid.uuid5 and str(), which counted for a third of detection time on a fleet with many sessions."""
    digest = bytearray(hashlib.sha1(_PREFIX + f"{source}|{entity_id}|{start_iso}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
