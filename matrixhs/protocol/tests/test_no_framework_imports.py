"""The protocol core imports no web or task framework (DESIGN "The protocol core")."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {"django", "rest_framework", "channels", "celery"}
PROTOCOL_DIR = Path(__file__).resolve().parent.parent


def imported_top_level_names(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            if node.args and isinstance(node.args[0], ast.Constant):
                names.add(str(node.args[0].value).split(".")[0])
    return names


def test_no_protocol_module_imports_a_framework() -> None:
    files = sorted(PROTOCOL_DIR.rglob("*.py"))
    assert len(files) > 10
    offenders = {
        str(path.relative_to(PROTOCOL_DIR)): sorted(names & FORBIDDEN)
        for path in files
        if (names := imported_top_level_names(path.read_text(encoding="utf-8"))) & FORBIDDEN
    }
    assert offenders == {}


def test_the_checker_finds_framework_imports() -> None:
    source = "import os\nfrom django.db import models\nimport celery.app\n"
    source += "def f():\n    from rest_framework import views\n    __import__('channels.layers')\n"
    assert imported_top_level_names(source) & FORBIDDEN == FORBIDDEN
