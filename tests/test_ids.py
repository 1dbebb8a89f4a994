"""Session ids are uuid5 of (source, entity, start): stored ids must never change between versions."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from core.ids import SESSION_NAMESPACE, session_id


@settings(max_examples=500, deadline=None)
@given(st.text(min_size=1, max_size=128), st.text(max_size=40), st.sampled_from(["detected", "imported"]))
def test_session_ids_are_the_uuid5_of_source_entity_and_start(entity_id, start, source):
    assert session_id(entity_id, start, source) == str(uuid.uuid5(SESSION_NAMESPACE, f"{source}|{entity_id}|{start}"))


def test_a_known_id_stays_the_same():
    assert session_id("ev-01", "2025-02-01T10:00:00Z") == "7d8c23cb-7391-5ea4-99e7-95785162f674"
