"""files.atomic_write: the one way the package writes a file."""

from __future__ import annotations

import pytest

from gpt_from_scratch.files import atomic_write


def test_writes_the_whole_file_in_binary_and_text(tmp_path):
    with atomic_write(tmp_path / "sub" / "a.bin") as f:
        f.write(b"\x00\x01")
    with atomic_write(tmp_path / "b.txt", "w") as f:
        f.write("héllo\n")
    assert (tmp_path / "sub" / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_bytes() == "héllo\n".encode("utf-8")  # utf-8, newline kept as written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.txt", "sub"]


def test_a_failure_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(path, "w") as f:
            f.write("new, but only half")
            raise RuntimeError("boom")
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_only_whole_file_modes(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "a", "a"):
            pass
