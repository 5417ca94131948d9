"""The one atomic write: the old content or the new, never a mix, and no temporary file left by an error."""

import pytest
from helpers import watch_atomic_writes

from kerasreg import _files


def test_write_atomic_writes_text_as_utf8_and_bytes_as_they_are(tmp_path):
    _files.write_atomic(tmp_path / "a.txt", "été\n")
    _files.write_atomic(tmp_path / "b.bin", b"\x00\xff")
    assert (tmp_path / "a.txt").read_bytes() == "été\n".encode("utf-8")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]


@pytest.mark.parametrize("step, left", [
    ("begin", "old"), ("partial", "old"), ("written", "old"), ("synced", "old"), ("replaced", "new content")])
def test_an_error_at_any_step_leaves_the_old_content_or_the_new_and_no_temporary_file(
        tmp_path, monkeypatch, step, left):
    target = tmp_path / "status.json"
    target.write_text("old")

    def fail(at, written):
        if at == step:
            raise OSError(28, "No space left on device")

    watch_atomic_writes(monkeypatch, fail)
    with pytest.raises(OSError, match="No space left"):
        _files.write_atomic(target, "new content")
    assert target.read_text() == left
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_replace_dir_puts_a_built_folder_in_place_of_an_old_one(tmp_path):
    old, built = tmp_path / "target", tmp_path / ".target.building" / "target"
    old.mkdir()
    (old / "stale.txt").write_text("old")
    built.mkdir(parents=True)
    (built / "fresh.txt").write_text("new")
    _files.replace_dir(built, old)
    assert [p.name for p in old.iterdir()] == ["fresh.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".target.building", "target"]  # nothing old left aside
