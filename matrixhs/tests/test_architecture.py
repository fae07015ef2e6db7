"""Rules of the layout that a reviewer would otherwise have to remember."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = [
    "matrixhs",
    "accounts",
    "rooms",
    "sync",
    "e2ee",
    "federation",
    "media",
    "push",
    "serveradmin",
]


def _sources() -> list[Path]:
    return [
        path
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts and "tests" not in path.parts
    ]


def test_only_settings_reads_the_environment() -> None:
    offenders = []
    for path in _sources():
        if path == ROOT / "matrixhs" / "settings.py":
            continue
        text = path.read_text()
        if "os.environ" in text.replace('os.environ.setdefault("DJANGO_SETTINGS_MODULE"', "") or (
            "getenv(" in text
        ):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_project_package_init_stays_empty() -> None:
    assert (ROOT / "matrixhs" / "__init__.py").read_text().strip() == ""


def test_no_god_modules() -> None:
    names = {"utils.py", "helpers.py", "services.py", "common.py"}
    assert [str(p) for p in _sources() if p.name in names] == []


def test_views_do_not_write_models_directly() -> None:
    """Writes go through actions: a view never calls save/create/update/delete itself."""
    offenders = []
    for path in _sources():
        if path.name != "views.py" and path.parent.name != "views":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in (
                "save",
                "create",
                "bulk_create",
                "update",
                "delete",
                "get_or_create",
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


EVENT_TABLES = {
    "Event",
    "EventEdge",
    "EventAuthEdge",
    "CurrentStateEvent",
    "StateGroup",
    "StateGroupEntry",
    "ForwardExtremity",
    "EventSearch",
}
WRITES = {
    "create",
    "bulk_create",
    "update",
    "update_or_create",
    "get_or_create",
    "delete",
    "bulk_update",
}


def test_events_and_state_are_written_only_by_rooms_events() -> None:
    """STYLE 3.3: one module persists events and state (rooms/state.py holds its groups)."""
    allowed = {ROOT / "rooms" / "events.py", ROOT / "rooms" / "state.py"}
    offenders = []
    for path in _sources():
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in WRITES:
                continue
            chain = ast.unparse(node.func.value)
            if any(chain.startswith(f"{table}.objects") for table in EVENT_TABLES):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
