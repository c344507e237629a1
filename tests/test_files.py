"""The one atomic writer: complete or absent, normal modes, the old version kept until the swap."""

import os
import stat
from pathlib import Path

import pytest

from pipeline.files import atomic_dir, write_atomic


def test_a_file_is_written_whole_with_the_normal_mode(tmp_path):
    path = write_atomic(tmp_path / "sub" / "out.json", '{"a": 1}\n')
    umask = os.umask(0)
    os.umask(umask)
    assert path.read_text() == '{"a": 1}\n' and stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]


def test_a_failed_check_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = write_atomic(tmp_path / "out.yaml", "old\n")

    def refuse(tmp: Path) -> None:
        assert tmp.read_text() == "new\n" and tmp != path
        raise ValueError("does not load")

    with pytest.raises(ValueError, match="does not load"):
        write_atomic(path, "new\n", check=refuse)
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["out.yaml"]


def test_a_folder_is_swapped_in_at_the_end_and_restored_if_the_swap_fails(tmp_path, monkeypatch):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("v1")
    with pytest.raises(RuntimeError, match="boom"), atomic_dir(target) as tmp:
        (tmp / "weights").write_text("v2")
        assert (target / "weights").read_text() == "v1"  # the old one is intact while the new one is written
        raise RuntimeError("boom")
    assert (target / "weights").read_text() == "v1" and [p.name for p in tmp_path.iterdir()] == ["model"]

    real_rename = Path.rename

    def failing(self, dst):
        if self.name.endswith(".tmp"):  # the finished folder cannot be moved into place
            raise OSError("disk full")
        return real_rename(self, dst)

    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(OSError, match="disk full"), atomic_dir(target) as tmp:
        (tmp / "weights").write_text("v3")
    monkeypatch.undo()
    assert (target / "weights").read_text() == "v1" and [p.name for p in tmp_path.iterdir()] == ["model"]
