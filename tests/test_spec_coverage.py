"""Which operations of the client-server API (the vendored spec v1.19) this server does
not serve, kept in conformance/client-server-unserved.tsv with the reason for each. Every
operation is requested as a client would (no access token, placeholder IDs): one that
answers 404 or 405 with M_UNRECOGNIZED is not served. The test fails when the list and
the server disagree, both ways."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[1]
UNSERVED = ROOT / "conformance" / "client-server-unserved.tsv"
METHODS = ("get", "put", "post", "delete")
#: Placeholder path parameters, by name (others: "x").
SAMPLES = {
    "userId": "@someone:elsewhere.example",
    "roomId": "!room:elsewhere.example",
    "roomIdOrAlias": "!room:elsewhere.example",
    "roomAlias": "#alias:elsewhere.example",
    "eventId": "$event",
    "serverName": "elsewhere.example",
}


def _operations() -> list[tuple[str, str]]:
    spec = json.loads((ROOT / "tests" / "spec" / "client-server.json").read_text())
    return [
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in METHODS
        if method in operations
    ]


def _asgi_paths() -> list[re.Pattern[str]]:
    """Routes served in front of Django (the /sync long-polls)."""
    from matrixhs.asgi import http

    return [route.pattern.regex for route in http.routes if route.pattern.regex.pattern != ""]


def _unserved(client: Client) -> set[tuple[str, str]]:
    in_front = _asgi_paths()
    found = set()
    for method, path in _operations():
        url = re.sub(
            r"\{(\w+)\}", lambda m: quote(SAMPLES.get(m.group(1), "x"), safe=""), path.strip()
        )
        if any(p.match(url.lstrip("/")) for p in in_front):
            continue
        call = getattr(client, method.lower())
        response = (
            call(url, data="{}", content_type="application/json")
            if method in ("PUT", "POST")
            else call(url)
        )
        if response.status_code in (404, 405) and b"M_UNRECOGNIZED" in response.content:
            found.add((method, path.strip()))
    return found


def _listed() -> dict[tuple[str, str], str]:
    with UNSERVED.open() as f:
        rows = list(csv.reader(f, delimiter="\t"))
    return {(row[0], row[1]): row[2] for row in rows[1:] if row}


@pytest.mark.django_db
def test_the_unserved_operations_are_the_listed_ones(settings: object) -> None:
    unserved = _unserved(Client())
    listed = _listed()
    assert all(reason.strip() for reason in listed.values()), "every entry needs a reason"
    newly_served = sorted(set(listed) - unserved)
    not_listed = sorted(unserved - set(listed))
    assert not newly_served, f"served now, remove from {UNSERVED.name}: {newly_served}"
    assert not not_listed, f"not served, list with a reason in {UNSERVED.name}: {not_listed}"
