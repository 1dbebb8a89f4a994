"""Shared page plumbing: the store, errors shown as sentences, empty states, KPI cards."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import streamlit as st

from core.errors import ChargeLensError
from core.settings import database_path
from core.store import Store

_MARKDOWN = re.compile(r"([\\`*_\[\]<>~:$|])")
_LINE_START = re.compile(r"^(\s*)([#+\-=>]|\d+\.)", re.MULTILINE)


def literal(text: object) -> str:
    """Text from data (names, ids, labels, file names) shown as it is: Markdown and directives escaped.

    Inline markers are escaped everywhere, block markers (headings, lists) only where a line starts, so an id
    like ev-05 reads the same in a label and in the browser's accessible name.
    """
    escaped = _MARKDOWN.sub(r"\\\1", str(text))

    def block(m: re.Match) -> str:
        marker = m.group(2)
        return m.group(1) + (marker[:-1] + "\\." if marker.endswith(".") else "\\" + marker)

    return _LINE_START.sub(block, escaped)


def store() -> Store:
    """The process's store; when it cannot be opened the page says why and stops."""
    try:
        return Store.open(database_path())
    except ChargeLensError as exc:
        st.error(literal(exc.detail))
        st.stop()


@contextlib.contextmanager
def shown_errors():
    """Show a refused action as one sentence instead of a traceback."""
    try:
        yield
    except ChargeLensError as exc:
        text = f"{exc.title}: {exc.detail}" if exc.title not in ("BadRequest", "ValidationError") else exc.detail
        st.error(literal(text))


def announce_once(key: str) -> None:
    """The success line an action left in st.session_state[key] before its st.rerun(), shown once in the run that
    shows its result. The slot is there on every run, so that the elements below keep their place (and expanders
    their state)."""
    slot = st.empty()
    if said := st.session_state.pop(key, None):
        slot.success(literal(said))


def empty_state(message: str, hint: str | None = None) -> None:
    st.info(message + (f"\n\n{hint}" if hint else ""), icon=":material/info:")


@dataclass(frozen=True)
class Kpi:
    label: str
    key: str
    fmt: str = "{:,.0f}"
    help: str | None = None


def kpi_row(cards: Sequence[Kpi], values: dict) -> None:
    for column, card in zip(st.columns(len(cards)), cards, strict=True):
        value = values.get(card.key)
        column.metric(card.label, "–" if value is None else card.fmt.format(value), help=card.help)


def feature_client():
    """The client of the feature API (this process's own API over httpx; see core.platform)."""
    from core.platform import local_client

    return local_client(database_path())
