"""Deterministic ids: the same entity, start and source always give the same session id."""

from __future__ import annotations

import uuid

SESSION_NAMESPACE = uuid.UUID("6f1c1a52-4c35-4a7e-9d55-1c7c3f0f2b9e")


def session_id(entity_id: str, start_iso: str, source: str = "detected") -> str:
    return str(uuid.uuid5(SESSION_NAMESPACE, f"{source}|{entity_id}|{start_iso}"))
