"""Atomic outputs: the final name holds the old file or the complete new one, never a partial one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sinks.atomic import (
    atomic_path,
    temp_path_for,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)


def test_temp_path_is_hidden_partial_and_keeps_the_extension(tmp_path: Path) -> None:
    tmp = temp_path_for(tmp_path / "clip.final.mp4")
    assert tmp.parent == tmp_path
    assert tmp.name.startswith(".clip.final.partial-")
    assert tmp.suffix == ".mp4"
    assert temp_path_for(tmp_path / "clip.mp4") != temp_path_for(tmp_path / "clip.mp4")


def test_success_moves_the_temp_file_onto_the_final_name(tmp_path: Path) -> None:
    final = tmp_path / "new folder" / "deeper" / "out.txt"  # parent folders are created
    with atomic_path(final) as tmp:
        tmp.write_text("complete")
        assert not final.exists()  # nothing under the final name while writing
    assert final.read_text() == "complete"
    assert sorted(p.name for p in final.parent.iterdir()) == ["out.txt"]


@pytest.mark.parametrize("error", [ValueError("boom"), KeyboardInterrupt()])
def test_an_exception_removes_the_temp_file_and_keeps_the_old_output(tmp_path: Path,
                                                                      error: BaseException) -> None:
    final = tmp_path / "out.json"
    final.write_text("old")
    with pytest.raises(type(error)):
        with atomic_path(final) as tmp:
            tmp.write_text("half")
            raise error
    assert final.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_writers_round_trip_and_leave_no_temp_files(tmp_path: Path) -> None:
    write_bytes_atomic(tmp_path / "a.bin", b"\x00\x01")
    write_text_atomic(tmp_path / "b.txt", "héllo 世界")
    obj = {"ids": np.arange(3), "score": np.float32(0.5), "ok": np.bool_(True), "name": "ünï"}
    write_json_atomic(tmp_path / "c.json", obj)
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo 世界"
    assert json.loads((tmp_path / "c.json").read_text(encoding="utf-8")) == {
        "ids": [0, 1, 2], "score": 0.5, "ok": True, "name": "ünï"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt", "c.json"]


def test_unserialisable_json_keeps_the_old_file(tmp_path: Path) -> None:
    final = tmp_path / "c.json"
    final.write_text("{}")
    with pytest.raises(TypeError):
        write_json_atomic(final, {"x": object()})
    assert final.read_text() == "{}"


def test_a_folder_as_output_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(DehrnetError, match="is a folder"):
        write_text_atomic(tmp_path, "x")
