"""The local API's client id and secret, kept in a 0600 file beside the database (never logged, never in it)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from pathlib import Path

from core.errors import ChargeLensError
from core.settings import sidecar

SUFFIX = "api-credentials.json"


class CredentialsError(ChargeLensError):
    """The credentials file exists but cannot be used; the server cannot authenticate anyone until it is fixed."""

    title = "CredentialsUnreadable"
    status = 503


def credentials_file(db_path: Path) -> Path:
    return sidecar(Path(db_path), SUFFIX)


def load_or_create(db_path: Path) -> dict:
    """{"clientId", "clientSecret"} of the local API for this database, created on first use."""
    path = credentials_file(db_path)
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    created = {"clientId": f"chargelens-{secrets.token_hex(8)}", "clientSecret": secrets.token_urlsafe(32)}
    if _publish(path, json.dumps(created, indent=2) + "\n"):
        return created
    return _read(path)  # another process (server or CLI) created it first: everyone uses that one


def _read(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    with contextlib.suppress(OSError):
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, 0o600)  # a copy restored with looser rights must not stay readable by others
    try:
        data = json.loads(text)
        result = {"clientId": str(data["clientId"]), "clientSecret": str(data["clientSecret"])}
    except (ValueError, KeyError, TypeError):
        raise CredentialsError(
            f"The API credentials file {path.name} is damaged; delete it and new credentials are created on next use."
        ) from None
    if not result["clientId"] or not result["clientSecret"]:
        raise CredentialsError(
            f"The API credentials file {path.name} has an empty id or secret; delete it to create new credentials."
        )
    return result


def _publish(path: Path, text: str) -> bool:
    """Write the file whole and only if it does not exist yet; False when someone else was first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        # A hard link appears atomically and fails when the name exists, so a reader never sees half a file.
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            return _publish_exclusive(path, text)  # file systems without hard links
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _publish_exclusive(path: Path, text: str) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return True
