"""Plain Flight actions: maintenance of the lake. Each answers one JSON result."""

from __future__ import annotations

import json
from typing import Callable

from lakehouse.auth import ADMIN, READ, WRITE, Identity
from lakehouse.errors import InvalidInput
from lakehouse.lake import Lake


def _health(lake: Lake, body: str, who: Identity) -> object:
    return lake.health().to_json()


def _gc(lake: Lake, body: str, who: Identity) -> object:
    try:
        grace = float(body) if body.strip() else None
    except ValueError:
        raise InvalidInput(f"gc: the body must be empty or a number of grace seconds, got {body!r}") from None
    return {"deleted": lake.gc(grace)}


def _drop(lake: Lake, body: str, who: Identity) -> object:
    name = body.strip()
    if not name:
        raise InvalidInput("drop: the body must be the dataset name")
    return {"dropped": lake.drop(name, who).to_json()}


def _manifest(lake: Lake, body: str, who: Identity) -> object:
    return lake.manifest_answer(lake.manifest(body.strip()))


def _compact(lake: Lake, body: str, who: Identity) -> object:
    name, _, order_by = body.strip().partition(" ")
    return lake.manifest_answer(lake.compact(name, order_by.strip() or None, who))


def _versions(lake: Lake, body: str, who: Identity) -> object:
    return lake.versions(body.strip())


def _refresh(lake: Lake, body: str, who: Identity) -> object:
    return {"datasets": lake.refresh()}


ACTIONS: dict[str, tuple[str, Callable[[Lake, str, Identity], object], str]] = {
    "health": ("Storage reachability and the dataset count.", _health, READ),
    "gc": ("Delete data objects no manifest references; body: optional grace seconds.", _gc, ADMIN),
    "drop": ("Drop a dataset; body: its name.", _drop, WRITE),
    "manifest": ("A dataset's latest manifest, with its Iceberg metadata location; body: its name.", _manifest, READ),
    "versions": ("A dataset's committed versions, oldest first; body: its name.", _versions, READ),
    "compact": ("Rewrite a dataset's objects into few large ones; body: its name, optionally a space and a column to sort by.", _compact, WRITE),
    "refresh": ("Re-read the catalog from storage now (other servers' commits).", _refresh, READ),
}


def run(lake: Lake, action: str, body: bytes, who: Identity) -> bytes:
    _, handler, permission = ACTIONS[action]
    who.require(permission, f"run {action}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{action}: the body must be UTF-8 text") from None
    if action in ("drop", "manifest", "versions", "compact"):
        who.require_dataset(text.strip().partition(" ")[0])
    return json.dumps(handler(lake, text, who)).encode()
