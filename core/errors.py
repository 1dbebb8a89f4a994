"""The small exception tree of ChargeLens: every error carries a title and a sentence saying what to do."""

from __future__ import annotations


class ChargeLensError(Exception):
    """A refused action or bad input: shown to people as `detail`, never as a traceback."""

    title = "BadRequest"
    status = 400

    def __init__(self, detail: str, *, title: str | None = None, errors: dict | None = None):
        super().__init__(detail)
        self.detail = detail
        if title:
            self.title = title
        self.errors = errors or {}


class InputError(ChargeLensError):
    """Input that fails validation (a file, an option, a body)."""

    title = "ValidationError"


class NotFound(ChargeLensError):
    title = "NotFound"
    status = 404


def unknown_entity(entity_id: str) -> NotFound:
    return NotFound(f"There is no entity '{entity_id}'; list entities to see the known ids.")


def unknown_location(location_id: str) -> NotFound:
    return NotFound(f"There is no location '{location_id}'; list locations to see the ids.")


class FeatureRefused(ChargeLensError):
    """A feature activation that the compatibility check refuses; `title` names the rule."""


class DatabaseError(ChargeLensError):
    """The database cannot be used as it is (busy, too new, corrupt)."""

    title = "DatabaseUnavailable"
    status = 503


class DatabaseBusy(DatabaseError):
    title = "DatabaseBusy"


class NotAvailableYet(ChargeLensError):
    """A command of the specification that this version does not have yet."""

    title = "NotImplemented"
    status = 501
