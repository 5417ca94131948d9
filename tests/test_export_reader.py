"""Reading an export is confined to the export: hostile manifests and symlinks are refused by name.

Every tampered manifest here carries a recomputed `manifest_sha256`, as an
attacker would write it, so only the confinement checks stand in the way.
"""

import json
import os
import pathlib
import shutil

import pytest

import kerasreg
from kerasreg.export import layout
from kerasreg.export.layout import ExportIntegrityError

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "export_v0_1"


@pytest.fixture
def export(tmp_path):
    """A copy of a real export, next to a file outside it."""
    path = tmp_path / "export"
    shutil.copytree(FIXTURE, path)
    return path


def rewrite(path, mutate):
    """Apply `mutate` to the manifest and re-sign it (recompute `manifest_sha256`)."""
    manifest = json.loads((path / layout.MANIFEST).read_text())
    mutate(manifest)
    manifest["manifest_sha256"] = layout.manifest_digest(manifest)
    (path / layout.MANIFEST).write_text(json.dumps(manifest))


def load_error(path):
    with pytest.raises(ExportIntegrityError) as excinfo:
        kerasreg.load(path)
    return str(excinfo.value)


@pytest.mark.parametrize("rel, problem", [
    ("../outside.txt", "leaves the export"),
    ("saved_model/../../outside.txt", "leaves the export"),
    ("/ABSOLUTE/outside.txt", "leaves the export"),
    ("saved_model/./variables", "not normalised"),
    ("saved_model//variables", "not normalised"),
    ("saved_model\\..\\..\\outside.txt", "not a plain relative path"),
])
def test_manifest_paths_outside_the_export_are_refused_whether_or_not_the_file_exists(
        export, tmp_path, rel, problem):
    outside = tmp_path / "outside.txt"
    rel = rel.replace("/ABSOLUTE", str(tmp_path))
    messages = []
    for exists in (True, False):
        if exists:
            outside.write_text("secret")
        elif outside.exists():
            outside.unlink()
        rewrite(export, lambda m: m["files"].update({rel: layout.sha256(__file__)}))
        messages.append(load_error(export))
    assert problem in messages[0] and repr(rel) in messages[0]
    assert messages[0] == messages[1]  # the message says nothing about the outside file


@pytest.mark.parametrize("target_exists", [True, False])
def test_symlinks_inside_an_export_are_refused(export, tmp_path, target_exists):
    outside = tmp_path / "outside.txt"
    if target_exists:
        outside.write_text("secret")
    os.symlink(outside, export / "history.csv.link")
    rewrite(export, lambda m: m["files"].update({"history.csv.link": "0" * 64}))
    message = load_error(export)
    assert "contains symlinks (history.csv.link)" in message and "outside.txt" not in message


def test_symlinked_manifest_is_refused(export, tmp_path):
    real = tmp_path / "elsewhere.json"
    shutil.move(export / layout.MANIFEST, real)
    os.symlink(real, export / layout.MANIFEST)
    assert "is a symlink" in load_error(export)


@pytest.mark.parametrize("mutate, problem", [
    (lambda m: m.update(files=list(m["files"])), "field 'files' must be dict, not list"),
    (lambda m: m.update(num_classes="10"), "field 'num_classes' must be int, not str"),
    (lambda m: m.update(name=None), "field 'name' must be str, not NoneType"),
    (lambda m: m.update(metrics=[1, 2]), "field 'metrics' must be dict, not list"),
    (lambda m: m["input"].update(dtype="object"), "input.dtype 'object' is not a known dtype"),
    (lambda m: m["input"].update(shape=[40, -1]), "input.shape must be a list of positive ints"),
    (lambda m: m["files"].update({"model.keras": 12}), "checksum of 'model.keras' is not a sha256"),
])
def test_malformed_manifest_fields_are_named(export, mutate, problem):
    rewrite(export, mutate)
    message = load_error(export)
    assert "is malformed" in message and problem in message


@pytest.mark.parametrize("text, problem", [
    ('{"schema": "kerasreg.export/1", "metrics": {"val_loss": NaN}}', "NaN"),
    ('{"schema": "kerasreg.export/1", "x": -Infinity}', "-Infinity"),
    ('{"schema": "kerasreg.export/1", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested deeper than"),
    ('{"schema": "kerasreg.export/1", "x": ' + "[" * 40 + "]" * 40 + "}", "nested deeper than 32"),
])
def test_manifest_that_is_not_strict_json_is_refused(export, text, problem):
    (export / layout.MANIFEST).write_text(text)
    assert problem in load_error(export)


def test_huge_manifest_is_refused_without_parsing(export):
    with open(export / layout.MANIFEST, "wb") as f:
        f.write(b'{"schema": "kerasreg.export/1", "x": "')
        f.truncate(layout.MAX_MANIFEST_BYTES + 1)
    assert "more than a manifest can be" in load_error(export)
