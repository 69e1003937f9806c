"""Workspace layout, project-name validation and atomic writes."""

from __future__ import annotations

import json

import pytest

from studio.errors import WorkspaceError
from studio.workspace import (
    Workspace,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    list_workspaces,
    validate_name,
)


@pytest.mark.parametrize("name", ["my-voice", "Zoë", "小明的声音", "あいう voice_2", "a" * 64, "con-voice"])
def test_valid_names_are_kept(name, tmp_path):
    ws = Workspace(name, tmp_path).ensure()
    assert ws.dir == tmp_path / name
    assert ws.raw_dir.is_dir() and ws.clean_dir.is_dir() and ws.slices_dir.is_dir() and ws.reports_dir.is_dir()
    assert ws.dataset_list == ws.dir / "dataset.list"
    assert [w.name for w in list_workspaces(tmp_path)] == [name]


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "..",
        "../evil",
        "a/b",
        "a\\b",
        ".hidden",
        "CON",
        "nul.txt",
        "com1",
        "LPT9",
        "what?",
        "a:b",
        "x\n",
        "tab\there",
        "end.",
        " lead",
        "a" * 65,
    ],
)
def test_bad_names_are_refused(name, tmp_path):
    with pytest.raises(WorkspaceError):
        Workspace(name, tmp_path)
    assert not any(tmp_path.iterdir())


def test_name_is_nfc_normalised():
    assert validate_name("Zoe\u0308") == "Zoë"


def test_atomic_writes_replace_and_leave_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "file.json"
    atomic_write_json(target, {"a": 1, "text": "声音"})
    atomic_write_text(target, json.dumps({"a": 2}))
    assert json.loads(target.read_text()) == {"a": 2}
    atomic_write_bytes(target, b"xyz")
    assert target.read_bytes() == b"xyz"
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "keep.json"
    atomic_write_json(target, {"ok": True})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]
