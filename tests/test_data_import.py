"""Importing a user's data: `.npz`, CSV files and image folders become TFDS datasets usable by name."""

import dataclasses
import hashlib
import json
import os
import pathlib
import zipfile

import numpy as np
import pytest
import sklearn
import tensorflow_datasets as tfds
from PIL import Image

import kerasreg
from helpers import data_dir_entries
from kerasreg import cli

SKLEARN_DATA = pathlib.Path(sklearn.__file__).parent / "datasets" / "data"


def make_image_folder(root, classes=("cat", "dog"), per_class=5, size=(10, 12), mode="RGB", seed=0):
    """Write `root/<class>/<i>.png` with seeded noise; returns root."""
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (*size, channels), dtype=np.uint8)
            Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(root / name / f"{i}.png")
    return root


def import_cli(capsys, *argv):
    """Run `kerasreg data import ...` in this process; returns (exit code, stdout, stderr)."""
    code = cli.main(["data", "import", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("file, classes, features", [
    ("iris.csv", ("setosa", "versicolor", "virginica"), 4),
    ("wine_data.csv", ("class_0", "class_1", "class_2"), 13),
    ("breast_cancer.csv", ("malignant", "benign"), 30),
])
def test_scikit_learn_csv_files_import_with_their_class_names_and_every_row(tmp_path, file, classes, features):
    imported = kerasreg.import_dataset("sk_table", SKLEARN_DATA / file, data_dir=tmp_path)
    assert imported.class_names == classes and imported.input_shape == (features,)
    # The header row holds n_samples, n_features and the class names; every other row is data.
    rows = np.loadtxt(SKLEARN_DATA / file, delimiter=",", skiprows=1, dtype=np.float32)
    assert sum(imported.sizes.values()) == len(rows)
    assert imported.sizes["test"] == round(len(rows) * 0.2)
    data = kerasreg.load_dataset("sk_table", data_dir=tmp_path)
    assert data.class_names == classes and data.num_classes == len(classes)
    loaded = np.concatenate([np.column_stack([x, y]) for x, y in map(data.as_numpy, ("train", "val", "test"))])
    np.testing.assert_array_equal(loaded[np.lexsort(loaded.T[::-1])], rows[np.lexsort(rows.T[::-1])])


def test_import_command_then_list_and_info_show_the_source_and_its_sha256(tmp_path, capsys):
    source = SKLEARN_DATA / "wine_data.csv"
    code, out, _ = import_cli(capsys, "sk_wine", source, "--data-dir", tmp_path)
    assert code == 0 and "Imported 'sk_wine' (142 train, 36 test; input (13,), 3 classes)" in out
    assert cli.main(["data", "list", "--data-dir", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert any(line.split()[:3] == ["sk_wine", "imported", "prepared"] for line in listing.splitlines())
    assert cli.main(["data", "info", "sk_wine", "--data-dir", str(tmp_path), "--source", str(source)]) == 0
    info = capsys.readouterr().out
    sha256 = hashlib.sha256(source.read_bytes()).hexdigest()
    assert f"sha256: {sha256}" in info and "label: 'label', 3 classes (class_0, class_1, class_2)" in info
    assert "unchanged since import" in info
    # A real TFDS dataset: TFDS alone reads it back, with its description naming the source's sha256.
    builder = tfds.builder("sk_wine", data_dir=str(tmp_path))
    assert builder.info.supervised_keys == ("x", "label") and sha256 in builder.info.description
    assert builder.info.splits["train"].num_examples == 142


def test_string_labels_become_sorted_class_names(tmp_path):
    csv = tmp_path / "fruit.csv"
    csv.write_text("weight,kind,size\n1.5,pear,2\n2.5,apple,3\n0.5,pear,1\n3.5,fig,4\n1.0,apple,2\n")
    kerasreg.import_dataset("fruit", csv, label="kind", test_split=0.2, data_dir=tmp_path / "d")
    data = kerasreg.load_dataset("fruit", data_dir=tmp_path / "d", validation_split=0.25)
    assert data.class_names == ("apple", "fig", "pear") and data.input_shape == (2,)
    x = np.concatenate([data.as_numpy(s)[0] for s in ("train", "val", "test")])
    y = np.concatenate([data.as_numpy(s)[1] for s in ("train", "val", "test")])
    by_weight = dict(zip(x[:, 0].tolist(), y.tolist()))
    assert by_weight == {1.5: 2, 2.5: 0, 0.5: 2, 3.5: 1, 1.0: 0}


@pytest.mark.parametrize("present, missing", [("x_test", "y_test"), ("y_test", "x_test")])
def test_an_npz_with_half_a_test_split_exits_2_naming_the_missing_key(tmp_path, capsys, present, missing):
    arrays = {"x_train": np.zeros((4, 2), np.float32), "y_train": np.array([0, 1, 0, 1]),
              "x_test": np.zeros((2, 2), np.float32), "y_test": np.array([0, 1])}
    del arrays[missing]
    np.savez(tmp_path / "half.npz", **arrays)
    code, _, err = import_cli(capsys, "half", tmp_path / "half.npz", "--data-dir", tmp_path / "d")
    assert code == 2 and "half.npz" in err and f"no `{missing}`" in err and "Traceback" not in err


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_a_csv_that_is_not_utf8_exits_2_naming_the_file(tmp_path, capsys, encoding):
    csv = tmp_path / "fruit.csv"
    csv.write_bytes("kind,weight\npéar,1.5\napple,2.5\n".encode(encoding))
    code, _, err = import_cli(capsys, "fruit", csv, "--label", "kind", "--data-dir", tmp_path / "d")
    assert code == 2 and "fruit.csv is not UTF-8 text" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_csv_whose_header_starts_with_a_utf8_bom_keeps_its_label_column(tmp_path):
    csv = tmp_path / "bom.csv"
    csv.write_bytes(b"\xef\xbb\xbfkind,weight\npear,1.5\napple,2.5\npear,0.5\nfig,3.5\napple,1.0\n")
    imported = kerasreg.import_dataset("bom", csv, label="kind", test_split=0.2, data_dir=tmp_path / "d")
    assert imported.class_names == ("apple", "fig", "pear") and imported.input_shape == (1,)


@pytest.mark.parametrize("variant", ["quoted fields", "blank lines", "windows line ends"])
def test_a_csv_whose_newlines_do_not_count_its_rows_imports_the_same_split(tmp_path, variant):
    rows = [f"{i / 4},{i % 3}" for i in range(40)]
    plain = tmp_path / "plain.csv"
    plain.write_text("a,label\n" + "\n".join(rows) + "\n")
    text = {"quoted fields": '"a",label\n' + "\n".join(f'"{row.split(",")[0]}",{row.split(",")[1]}' for row in rows),
            "blank lines": "a,label\n\n" + "\n\n".join(rows) + "\n\n",
            "windows line ends": "a,label\r\n" + "\r\n".join(rows)}[variant]
    other = tmp_path / "other.csv"
    other.write_bytes(text.encode())
    for name, source in (("plain", plain), ("other", other)):
        kerasreg.import_dataset(name, source, data_dir=tmp_path / "d")
    splits = [kerasreg.load_dataset(name, data_dir=tmp_path / "d").as_numpy("test") for name in ("plain", "other")]
    assert len(splits[0][0]) == 8
    np.testing.assert_array_equal(splits[0][0], splits[1][0])
    np.testing.assert_array_equal(splits[0][1], splits[1][1])


def test_image_folder_is_resized_and_keeps_rgb_or_grayscale(tmp_path):
    rgb = make_image_folder(tmp_path / "rgb", classes=("a", "b", "c"), per_class=4, size=(10, 12))
    imported = kerasreg.import_dataset("rgb_pics", rgb, image_size=(8, 6), test_split=0.25, data_dir=tmp_path / "d")
    assert imported.input_shape == (8, 6, 3) and imported.class_names == ("a", "b", "c")
    assert imported.sizes == {"train": 9, "test": 3}
    gray = make_image_folder(tmp_path / "gray", mode="L", size=(7, 9), per_class=5)
    kerasreg.import_dataset("gray_pics", gray, data_dir=tmp_path / "d")
    data = kerasreg.load_dataset("gray_pics", data_dir=tmp_path / "d", validation_split=0.25)
    assert data.input_shape == (7, 9, 1) and data.x_train.dtype == np.float32
    # Pixels round-trip exactly (scaled to [0, 1]) when no resize is asked for.
    stored = sorted(np.asarray(Image.open(p)).tobytes() for p in gray.glob("*/*.png"))
    loaded = np.concatenate([data.as_numpy(s)[0] for s in ("train", "val", "test")])
    assert sorted(np.round(loaded[..., 0] * 255).astype(np.uint8).tobytes()[i * 63:(i + 1) * 63]
                  for i in range(10)) == stored


def test_16_bit_grayscale_images_are_scaled_to_the_8_bit_range_not_saturated(tmp_path):
    rng = np.random.default_rng(0)
    stored = {}
    for name in ("a", "b"):
        (tmp_path / "deep" / name).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 65536, (6, 5), dtype=np.uint16)
            Image.fromarray(pixels).save(tmp_path / "deep" / name / f"{i}.png")
            stored[f"{name}{i}"] = pixels
    assert Image.open(tmp_path / "deep" / "a" / "0.png").mode == "I;16"
    kerasreg.import_dataset("deep_pics", tmp_path / "deep", test_split=0.25, data_dir=tmp_path / "d")
    data = kerasreg.load_dataset("deep_pics", data_dir=tmp_path / "d")
    loaded = np.concatenate([data.as_numpy(s)[0] for s in ("train", "val", "test")])[..., 0]
    sources = np.stack(list(stored.values())) / 65535
    # Each loaded image beside the stored image it is closest to (random images: no two are alike).
    matched = sources[[np.abs(sources - image).sum(axis=(1, 2)).argmin() for image in loaded]]
    assert np.corrcoef(loaded.reshape(-1), matched.reshape(-1))[0, 1] > 0.99
    assert np.abs(loaded - matched).max() <= 0.5 / 255 + 1e-6  # x / 65535 * 255, rounded


def test_hidden_files_and_folders_are_skipped_and_said(tmp_path, capsys):
    pics = make_image_folder(tmp_path / "pics", classes=("a", "b"), per_class=3)
    make_image_folder(pics / ".ipynb_checkpoints", classes=("a",), per_class=2)  # a notebook's autosave
    (pics / "a" / ".0.png").write_bytes((pics / "a" / "0.png").read_bytes())
    imported = kerasreg.import_dataset("hidden_pics", pics, data_dir=tmp_path / "d", test_split=0.5)
    assert imported.class_names == ("a", "b") and sum(imported.sizes.values()) == 6
    err = capsys.readouterr().err
    assert f"kerasreg: skipped hidden .ipynb_checkpoints in {pics}" in err
    assert f"kerasreg: skipped hidden .0.png in {pics / 'a'}" in err


def test_image_folder_with_train_and_test_folders_keeps_them(tmp_path):
    make_image_folder(tmp_path / "pics" / "train", per_class=4, seed=1)
    make_image_folder(tmp_path / "pics" / "test", per_class=2, seed=2)
    imported = kerasreg.import_dataset("split_pics", tmp_path / "pics", data_dir=tmp_path / "d")
    assert imported.sizes == {"train": 8, "test": 4} and imported.class_names == ("cat", "dog")


def test_npz_with_train_and_test_arrays_or_x_and_y_with_a_seeded_split(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 6)).astype(np.float32), np.arange(50) % 5
    np.savez(tmp_path / "tt.npz", x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
    imported = kerasreg.import_dataset("tt", tmp_path / "tt.npz", data_dir=tmp_path / "d")
    assert imported.sizes == {"train": 40, "test": 10}
    data = kerasreg.load_dataset("tt", data_dir=tmp_path / "d")
    np.testing.assert_array_equal(data.as_numpy("test")[0], x[40:])
    np.savez_compressed(tmp_path / "xy.npz", x=x, y=y)
    tests = []
    for seed in (0, 0, 1):
        kerasreg.import_dataset("xy", tmp_path / "xy.npz", seed=seed, data_dir=tmp_path / "d", overwrite=True)
        tests.append(kerasreg.load_dataset("xy", data_dir=tmp_path / "d").as_numpy("test")[0])
    assert len(tests[0]) == 10
    np.testing.assert_array_equal(tests[0], tests[1])
    assert not np.array_equal(tests[0], tests[2])


def _csv(tmp_path, text):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    return path


def _csv_bytes(tmp_path, data):
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    return path


def _npz(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


def _damaged_npz(tmp_path, member, save=np.savez):
    """An .npz whose zip member `member` has one byte flipped halfway through its data."""
    path = _npz(tmp_path)
    rng = np.random.default_rng(0)
    save(path, x=rng.normal(size=(2000, 6)), y=np.arange(2000) % 2)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    data = bytearray(path.read_bytes())
    name_length, extra_length = np.frombuffer(data[info.header_offset + 26:info.header_offset + 30], "<u2").tolist()
    data[info.header_offset + 30 + name_length + extra_length + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _cut_npz(tmp_path, member):
    """An .npz (a sound zip) whose `.npy` member `member` holds half the bytes its header promises."""
    path = tmp_path / "bad.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for key, array in (("x", np.ones((2000, 6))), ("y", np.arange(2000) % 2)):
            with archive.open(f"{key}.npy", "w") as f:
                np.save(f, array)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members[member] = members[member][:len(members[member]) // 2]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _ragged_npz(tmp_path):
    path = tmp_path / "ragged.npz"
    ragged = np.empty(2, object)
    ragged[:] = [np.zeros(3), np.zeros(4)]
    np.savez(path, x=ragged, y=np.array([0, 1]))
    return path


def _images(tmp_path, breakage):
    root = make_image_folder(tmp_path / "pics", per_class=3)
    if breakage == "empty":
        (root / "bird").mkdir()
    elif breakage == "newline":
        (root / "dog").rename(root / "do\ng")
    elif breakage == "truncated":
        data = (root / "dog" / "1.png").read_bytes()
        (root / "dog" / "1.png").write_bytes(data[: len(data) // 2])
    else:
        (root / "dog" / "2.png").write_text("not an image")
    return root


X = np.ones((6, 3), np.float32)
Y = np.array([0, 1, 0, 1, 0, 1])

BAD_SOURCES = {
    "ragged arrays": (_ragged_npz, r"ragged.npz: `x` is a ragged array \(dtype object\)"),
    "x and y lengths": (lambda t: _npz(t, x=X, y=Y[:5]), r"`x` has 6 examples but `y` has 5 labels"),
    "nan feature": (lambda t: _npz(t, x=np.where(np.eye(6, 3) > 0, np.nan, X), y=Y), r"has a nan feature value in row 0"),
    "inf feature": (lambda t: _csv(t, "a,b,label\n1,2,0\n3,inf,1\n1,2,0\n3,4,1\n1,2,0\n"), r"has a inf feature value in row 1"),
    "label gaps": (lambda t: _npz(t, x=X, y=np.array([0, 2, 0, 2, 3, 3])), r"labels with gaps: 0..3 without 1"),
    "negative labels": (lambda t: _npz(t, x=X, y=Y - 1), r"negative labels \(e.g. -1\)"),
    "float labels": (lambda t: _npz(t, x=X, y=Y * 1.0), r"float labels \(float64"),
    "float labels in csv": (lambda t: _csv(t, "a,label\n1,0.5\n2,1.5\n3,0.5\n"), r"float labels \(e.g. '0.5'\)"),
    "class names after integer labels": (lambda t: _csv(t, "a,label\n" + "1,0\n2,1\n" * 40000 + "3,cat\n"),
                                         r"mixes integer labels and class names \(row 80000: 'cat'\)"),
    "class names among early integer labels": (lambda t: _csv(t, "a,label\n1,0\n2,1\n3,cat\n4,0\n5,1\n6,cat\n"),
                                               r"mixes integer labels and class names \(row 2: 'cat'\)"),
    "integer labels after class names": (lambda t: _csv(t, "a,label\n" + "1,cat\n2,dog\n" * 40000 + "3,0\n"),
                                         r"mixes integer labels and class names \(row 80000: '0'\)"),
    "non-numeric column": (lambda t: _csv(t, "a,color,label\n1,2,0\n2,red,1\n3,4,0\n"),
                           r"non-numeric feature column 'color' \(row 1: 'red'\)"),
    "missing label column": (lambda t: _csv(t, "a,b,target\n1,2,0\n2,3,1\n"), r"has no column named 'label'"),
    "only a header": (lambda t: _csv(t, "a,b,label\n"), r"bad.csv has a header but no rows"),
    "short row": (lambda t: _csv(t, "a,b,label\n1,2,0\n3,1\n1,2,0\n4,5,1\n1,2,1\n"),
                  r"mixed row lengths: line 3 has 2 fields, the header has 3"),
    "long row": (lambda t: _csv(t, "a,b,label\n1,2,0\n3,4,1\n1,2,0,9\n4,5,1\n1,2,1\n"),
                 r"mixed row lengths: line 4 has 4 fields, the header has 3"),
    "a field over the csv limit": (lambda t: _csv(t, "a,label\n1," + "x" * 50_000_000 + "\n2,1\n3,0\n"),
                                   r"bad.csv line 2 has a field longer than 131072 characters"),
    "a class name over the csv limit": (lambda t: _csv(t, "a,label\n1,cat\n2,dog\n3,cat\n4," + "x" * 200_000 + "\n"),
                                        r"bad.csv row 3 has a field longer than 131072 characters"),
    "a long non-numeric feature": (lambda t: _csv(t, "a,label\n1,0\n2,1\n3,0\n" + "x" * 200_000 + ",1\n"),
                                   r"non-numeric feature column 'a' \(row 3: 'x{20}'\.\.\. of 200000 characters\)\. "),
    "latin-1 after utf-8 rows": (lambda t: _csv_bytes(t, b"label,weight\n" + b"pear,1.5\n" * 5000 + b"p\xe9ar,1.0\n"),
                                 r"bad.csv is not UTF-8 text \(line 5002, byte 45014: 0xe9\); save it as UTF-8"),
    "bad crc in an npz's inputs": (lambda t: _damaged_npz(t, "x.npy"),
                                   r"bad.npz: its member x.npy is damaged \(Bad CRC-32 for file 'x.npy'\)"),
    "bad crc in an npz's labels": (lambda t: _damaged_npz(t, "y.npy"),
                                   r"bad.npz: its member y.npy is damaged \(Bad CRC-32 for file 'y.npy'\)"),
    "damaged compressed npz member": (lambda t: _damaged_npz(t, "x.npy", np.savez_compressed),
                                      r"bad.npz: its member x.npy is damaged \(.*\); save the .npz again"),
    "damaged compressed npz header": (lambda t: _damaged_npz(t, "y.npy", np.savez_compressed),
                                      r"bad.npz: `y` is not a readable .npy array"),
    "a newline in a csv class name": (lambda t: _csv(t, 'a,label\n1,cat\n2,"do\ng"\n3,cat\n4,cat\n'),
                                      r"bad.csv's label column 'label': class name 'do\\ng' holds a control character"),
    "a tab in a csv class name": (lambda t: _csv(t, "a,label\n1,cat\n2,do\tg\n3,cat\n4,cat\n"),
                                  r"bad.csv's label column 'label': class name 'do\\tg' holds a control character"),
    "a newline in a class folder's name": (lambda t: _images(t, "newline"),
                                           r"pics's class folders: class name 'do\\ng' holds a control character"),
    "a cut-short npz labels member": (lambda t: _cut_npz(t, "y.npy"),
                                      r"bad.npz: its member y.npy is damaged \(EOF: reading array data, expected "
                                      r"16000 bytes got 7936\); save the .npz again"),
    "a cut-short npz inputs member": (lambda t: _cut_npz(t, "x.npy"), r"bad.npz: `x` is truncated at row 0"),
    "empty class folder": (lambda t: _images(t, "empty"), r"Class folder .*pics/bird is empty"),
    "truncated image": (lambda t: _images(t, "truncated"), r"Cannot read image .*pics/dog/1.png: image file is truncated"),
    "unreadable image": (lambda t: _images(t, "unreadable"), r"Cannot read image .*pics/dog/2.png: cannot identify"),
}


@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_bad_source_exits_2_naming_it_and_writes_nothing(tmp_path, capsys, case):
    make, message = BAD_SOURCES[case]
    source = make(tmp_path)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    code, out, err = import_cli(capsys, "mine", source, "--data-dir", data_dir, "--test-split", "0.34")
    assert code == 2, err
    assert re_search(message, err)
    assert os.listdir(data_dir) == []


def re_search(pattern, text):
    import re

    assert re.search(pattern, text), f"{pattern!r} not in {text!r}"
    return True


@pytest.mark.parametrize("side", [40, 100])  # Pillow warns above its limit, and raises above twice it
def test_an_image_over_pillows_decompression_bomb_limit_exits_2_naming_it_and_its_size(tmp_path, capsys,
                                                                                      monkeypatch, side):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    root = make_image_folder(tmp_path / "pics", per_class=3, size=(8, 8))
    Image.new("L", (side, side)).save(root / "dog" / "bomb.png")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    code, _, err = import_cli(capsys, "mine", root, "--data-dir", data_dir)
    assert code == 2 and "Traceback" not in err
    assert re_search(rf"Image .*pics/dog/bomb.png is {side}x{side} pixels \({side * side} pixels\), over Pillow's "
                     r"decompression-bomb limit of 1000 pixels", err)
    assert os.listdir(data_dir) == []


def test_a_bad_row_found_mid_write_leaves_an_earlier_import_in_place(tmp_path):
    rows = "".join(f"{i},{i % 3}\n" for i in range(70000))
    good = _csv(tmp_path, "a,label\n" + rows)
    kerasreg.import_dataset("late", good, data_dir=tmp_path / "d")
    # The NaN is in the second chunk (65,536 rows each): both splits are half written when it is found.
    bad = tmp_path / "late.csv"
    bad.write_text("a,label\n" + rows + "nan,1\n")
    with pytest.raises(ValueError, match=r"late.csv has a nan feature value in row 70000"):
        kerasreg.import_dataset("late", bad, data_dir=tmp_path / "d", overwrite=True)
    assert data_dir_entries(tmp_path / "d") == [".late.lock", ".late.version-*", "late"]
    assert sum(kerasreg.load_dataset("late", data_dir=tmp_path / "d").sizes.values()) == 70000


def test_a_file_size_limit_hit_while_importing_names_the_shard_and_leaves_nothing(tmp_path, capsys):
    from helpers import run_python

    source = _csv(tmp_path, "a,b,c,label\n" + "".join(f"{i},{i / 7},{i % 5},{i % 3}\n" for i in range(50000)))
    data_dir = tmp_path / "data"
    code = ("import resource, sys\n"
            "from kerasreg import cli\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))\n"
            "sys.exit(cli.main(['data', 'import', 'mine', sys.argv[1], '--data-dir', sys.argv[2]]))\n")
    limited = run_python(code, source, data_dir, check=False)
    assert limited.returncode == 2, limited.stderr
    assert re_search(rf"kerasreg data: error: cannot write {data_dir}/\.mine\.importing-\d+/mine/1\.0\.0/"
                     r"mine-train\.tfrecord-00000-of-00001: File too large; the file-size limit was reached",
                     limited.stderr)
    assert "Traceback" not in limited.stderr
    assert cli.main(["data", "list", "--data-dir", str(data_dir)]) == 0
    assert "mine" not in capsys.readouterr().out
    assert [entry for entry in os.listdir(data_dir) if "mine" in entry and not entry.endswith(".lock")] == []


@pytest.mark.parametrize("name, message", [
    ("digits", r"'digits' is taken by a kerasreg built-in"),
    ("mnist", r"'mnist' is taken by the TFDS catalog"),
    ("Bad-Name", r"Invalid value received for argument `name`"),
    ("wine\n", r"Received: name='wine\\n'"),
])
def test_taken_or_invalid_names_are_refused(tmp_path, capsys, name, message):
    code, _, err = import_cli(capsys, name, SKLEARN_DATA / "iris.csv", "--data-dir", tmp_path)
    assert code == 2 and re_search(message, err)
    assert os.listdir(tmp_path) == []


def test_an_earlier_import_is_replaced_only_with_overwrite(tmp_path, capsys):
    assert import_cli(capsys, "sk_iris", SKLEARN_DATA / "iris.csv", "--data-dir", tmp_path)[0] == 0
    code, _, err = import_cli(capsys, "sk_iris", SKLEARN_DATA / "wine_data.csv", "--data-dir", tmp_path)
    assert code == 2 and re_search(r"Dataset 'sk_iris' already exists in .* \(imported from .*iris.csv\)", err)
    assert kerasreg.load_dataset("sk_iris", data_dir=tmp_path).input_shape == (4,)
    code, _, _ = import_cli(capsys, "sk_iris", SKLEARN_DATA / "wine_data.csv", "--data-dir", tmp_path, "--overwrite")
    assert code == 0 and kerasreg.load_dataset("sk_iris", data_dir=tmp_path).input_shape == (13,)
    assert data_dir_entries(tmp_path) == [".sk_iris.lock", ".sk_iris.version-*", "sk_iris"]


def test_a_source_changed_after_import_is_reported_when_given_again(tmp_path, capsys):
    source = tmp_path / "table.csv"
    source.write_text("a,b,label\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(10)))
    kerasreg.import_dataset("table", source, data_dir=tmp_path / "d")
    kerasreg.load_dataset("table", data_dir=tmp_path / "d", source=source)
    source.write_text(source.read_text() + "5,5,1\n")
    with pytest.raises(ValueError, match=r"table.csv changed since dataset 'table' was imported"):
        kerasreg.load_dataset("table", data_dir=tmp_path / "d", source=source)
    code = cli.main(["data", "info", "table", "--data-dir", str(tmp_path / "d"), "--source", str(source)])
    assert code == 2 and "changed since dataset 'table' was imported" in capsys.readouterr().err


def test_train_on_an_imported_csv_records_the_source_fingerprint(tmp_path, capsys):
    source = SKLEARN_DATA / "breast_cancer.csv"
    kerasreg.import_dataset("sk_cancer", source, data_dir=tmp_path / "d")
    code = cli.main(["train", "--dataset", "sk_cancer", "--data-dir", str(tmp_path / "d"), "--epochs", "1",
                     "--widths", "8", "--out", str(tmp_path / "runs"), "--name", "cancer", "--quiet"])
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((tmp_path / "runs" / "cancer" / "manifest.json").read_text())
    assert manifest["dataset"]["name"] == "sk_cancer"
    assert manifest["dataset"]["source_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert manifest["input"]["shape"] == [30] and manifest["num_classes"] == 2


def test_a_machine_lacking_an_imported_dataset_receives_it_once_checksummed(tmp_path):
    from kerasreg.data import transfer

    kerasreg.import_dataset("sent", SKLEARN_DATA / "iris.csv", data_dir=tmp_path / "driver")
    package = transfer.pack_dataset("sent", tmp_path / "driver")
    assert transfer.pack_dataset("digits") is None
    fetched = []

    def fetch():
        fetched.append(1)
        return package

    node = tmp_path / "node"
    assert transfer.ensure_dataset("sent", package.source_sha256, fetch, node) is True
    assert transfer.ensure_dataset("sent", package.source_sha256, fetch, node) is False
    assert len(fetched) == 1 and data_dir_entries(node) == [".sent.lock", ".sent.version-*", "sent"]
    here, there = (kerasreg.load_dataset("sent", data_dir=d) for d in (tmp_path / "driver", node))
    np.testing.assert_array_equal(here.x_train, there.x_train)
    assert there.source_sha256 == hashlib.sha256((SKLEARN_DATA / "iris.csv").read_bytes()).hexdigest()
    damaged = dataclasses.replace(package, archive=package.archive[:-1] + b"x")
    with pytest.raises(ValueError, match=r"Dataset 'damaged' arrived damaged"):
        transfer.ensure_dataset("damaged", package.source_sha256, lambda: damaged, node)
    assert data_dir_entries(node) == [".sent.lock", ".sent.version-*", "sent"]


def test_a_study_file_naming_an_imported_image_folder_runs_and_compares(tmp_path):
    make_image_folder(tmp_path / "pics", classes=("a", "b", "c"), per_class=8, size=(8, 8))
    kerasreg.import_dataset("study_pics", tmp_path / "pics", data_dir=tmp_path / "d")
    study_file = tmp_path / "pics.toml"
    study_file.write_text(f'dataset = "study_pics"\ndata_dir = "{tmp_path / "d"}"\nmodels = ["mlp"]\n'
                          'placements = ["none", "bn_act_drop"]\nseeds = [0]\nepochs = 2\nbatch_size = 8\n')
    config = kerasreg.StudyConfig.from_toml(study_file)
    report = kerasreg.run_study(config, tmp_path / "study", workers=1, verbose=0)
    assert not report.failures
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "study" / "runs").glob("*/manifest.json")]
    assert len(manifests) == 2 and {m["dataset"]["name"] for m in manifests} == {"study_pics"}
    assert {m["input"]["shape"] for m in map(lambda m: {**m, "input": {"shape": tuple(m["input"]["shape"])}},
                                             manifests)} == {(8, 8, 3)}
    comparison = kerasreg.compare_exports([tmp_path / "study" / "runs"], data_dir=tmp_path / "d")
    assert "study_pics" in comparison.format_table()


def test_a_progress_bar_counts_the_examples_when_asked_and_stays_off_the_output_otherwise(tmp_path, capsys):
    kerasreg.import_dataset("bar", SKLEARN_DATA / "iris.csv", data_dir=tmp_path / "a", progress=True)
    assert re_search(r"importing bar: 100%\|.*\| 150/150 ", capsys.readouterr().err)
    kerasreg.import_dataset("bar", SKLEARN_DATA / "iris.csv", data_dir=tmp_path / "b")  # not a terminal: no bar
    assert "importing bar" not in capsys.readouterr().err


def test_importing_then_loading_in_one_program_prints_no_logging_noise(tmp_path):
    from helpers import run_python

    code = ("import sys, kerasreg\n"
            "kerasreg.import_dataset('quiet', sys.argv[1], data_dir=sys.argv[2])\n"
            "print(kerasreg.load_dataset('quiet', data_dir=sys.argv[2]).sizes)\n")
    done = run_python(code, SKLEARN_DATA / "iris.csv", tmp_path)
    assert done.stdout.strip() == "{'train': 108, 'val': 12, 'test': 30}"
    assert "Logging error" not in done.stderr and "deprecated" not in done.stderr, done.stderr[-2000:]
