"""Answers and stored events through orjson, and the standard library for what it refuses
(matrixhs.fastjson)."""

from __future__ import annotations

import json

from matrixhs.fastjson import JsonRenderer, dumps, loads


def test_answers_are_compact_utf8_json() -> None:
    body = {"chunk": [{"body": "héllo ☃", "n": 1, "ok": True, "none": None}], "f": 1.5}
    assert dumps(body) == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def test_what_orjson_refuses_is_written_by_the_standard_library() -> None:
    assert json.loads(dumps({"big": 2**70})) == {"big": 2**70}
    assert json.loads(dumps({1: "int key"})) == {"1": "int key"}


def test_stored_json_reads_the_same_either_way() -> None:
    text = '{"content": {"body": "hi", "n": 9007199254740991}, "type": "m.room.message"}'
    assert loads(text) == json.loads(text)
    assert loads('{"big": 1180591620717411303424}') == {"big": 2**70}
    assert loads(text.encode()) == json.loads(text)


def test_the_renderer_writes_nothing_for_no_data() -> None:
    renderer = JsonRenderer()
    assert renderer.render(None) == b""
    assert renderer.render({"a": "é"}) == '{"a":"é"}'.encode()
