"""Tests for kerasreg.data: built-in and TFDS datasets, splits, pipelines, errors."""

import os
import random
import re
import threading
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import kerasreg.data.builders as builders
import kerasreg.data.loading as loading
from kerasreg.data import (
    Dataset,
    DatasetNotPreparedError,
    dataset_info,
    default_data_dir,
    format_dataset_list,
    list_datasets,
    load_dataset,
)


class _TinyShapes:
    """Tiny uint8 images with three classes, generated locally like a real TFDS dataset."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description="Tiny random images for kerasreg tests.",
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(6, 6, 1)),
                    "label": tfds.features.ClassLabel(names=["circle", "square", "triangle"]),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(60, seed=1), "test": self._generate_examples(30, seed=2)}

    def _generate_examples(self, count, seed):
        rng = np.random.default_rng(seed)
        for index in range(count):
            yield index, {"image": rng.integers(0, 256, (6, 6, 1), dtype=np.uint8), "label": index % 3}


# Not registered with TFDS: stands for a dataset prepared on another machine
# whose builder code is not importable here; TFDS reads it from its files.
class CopiedShapes(_TinyShapes, tfds.core.GeneratorBasedBuilder, skip_registration=True):
    name = "kerasreg_test_copied_shapes"


# Registered, like `mnist` or `cifar10`: TFDS has the code but not the data.
class RegisteredShapes(_TinyShapes, tfds.core.GeneratorBasedBuilder):
    name = "kerasreg_test_registered_shapes"


def _rows(x):
    return {row.tobytes() for row in x}


def _passes(pipeline, count):
    return [np.concatenate([y.numpy() for _, y in pipeline]) for _ in range(count)]


# --- built-in datasets -------------------------------------------------------


def test_default_data_dir_follows_the_environment(data_dir):
    assert default_data_dir() == data_dir


def test_mnist1d_shapes_and_classes():
    ds = load_dataset("mnist1d")
    assert isinstance(ds, Dataset)
    assert ds.name == "mnist1d"
    assert ds.input_shape == (40,)
    assert ds.num_classes == 10
    assert ds.sizes == {"train": 3600, "val": 400, "test": 1000}
    for split in ("train", "val", "test"):
        x, y = ds.as_numpy(split)
        assert x.dtype == np.float32 and y.dtype == np.int32
        assert set(np.unique(y)) == set(range(10))
    assert ds.info.splits["train"].num_examples == 4000
    assert "Greydanus" in ds.info.citation


def test_digits_are_8x8x1_images_in_unit_range():
    ds = load_dataset("digits")
    assert ds.input_shape == (8, 8, 1)
    assert ds.num_classes == 10
    assert sum(ds.sizes.values()) == 1797
    assert ds.sizes["test"] == 450
    x, _ = ds.as_numpy("train")
    assert x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0


def test_repeated_loads_reuse_the_arrays_read_in_this_process():
    first, second = load_dataset("mnist1d"), load_dataset("mnist1d", seed=3)
    assert first.info is second.info


def test_mnist1d_generation_leaves_global_random_state_alone(monkeypatch):
    import mnist1d.data

    def make_dataset(args):
        np.random.seed(args.seed)
        random.seed(args.seed)
        return {"x": np.zeros((2, 40))}

    monkeypatch.setattr(mnist1d.data, "make_dataset", make_dataset)
    np.random.seed(123)
    random.seed(123)
    expected = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(123)
    builders._make_mnist1d()
    assert (np.random.random(), random.random()) == expected


# --- splits ------------------------------------------------------------------


def test_same_seed_same_split_other_seed_other_split():
    a = load_dataset("mnist1d", seed=0)
    b = load_dataset("mnist1d", seed=0)
    c = load_dataset("mnist1d", seed=1)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert _rows(a.x_val) != _rows(c.x_val)
    assert (a.split_seed, a.validation_split) == (0, 0.1)


def test_validation_is_carved_from_train_and_splits_are_disjoint():
    ds = load_dataset("mnist1d", validation_split=0.25, seed=7)
    train, val, test = _rows(ds.x_train), _rows(ds.x_val), _rows(ds.x_test)
    assert len(train) == 3000 and len(val) == 1000 and len(test) == 1000
    assert not train & val and not train & test and not val & test
    other = load_dataset("mnist1d", validation_split=0.5, seed=3)
    assert train | val == _rows(other.x_train) | _rows(other.x_val)


def test_standardize_fits_on_the_training_part_only():
    raw = load_dataset("mnist1d", seed=2)
    ds = load_dataset("mnist1d", seed=2, standardize=True)
    assert ds.standardized and not raw.standardized
    np.testing.assert_allclose(ds.mean, raw.x_train.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(ds.std, raw.x_train.std(axis=0), rtol=1e-4)
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(ds.x_train.std(axis=0), 1.0, atol=1e-3)
    np.testing.assert_allclose(ds.x_val, (raw.x_val - ds.mean) / ds.std, atol=1e-5)
    np.testing.assert_allclose(ds.x_test, (raw.x_test - ds.mean) / ds.std, atol=1e-5)
    assert ds.x_train.dtype == np.float32


def test_image_standardization_is_per_channel():
    ds = load_dataset("digits", standardize=True)
    assert ds.mean.shape == (1,) and ds.std.shape == (1,)
    assert abs(float(ds.x_train.mean())) < 1e-4


# --- pipelines ---------------------------------------------------------------


def test_tf_data_splits_are_unbatched_pairs():
    ds = load_dataset("mnist1d")
    x_spec, y_spec = ds.train.element_spec
    assert x_spec.shape == (40,) and x_spec.dtype == tf.float32
    assert y_spec.shape == () and y_spec.dtype == tf.int32
    assert [int(d.cardinality()) for d in (ds.train, ds.val, ds.test)] == [3600, 400, 1000]


def test_train_pipeline_shuffles_every_epoch_deterministically():
    ds = load_dataset("mnist1d")
    pipeline = ds.pipeline("train", batch_size=100, shuffle=True, seed=0)
    assert int(pipeline.cardinality()) == 36
    x_spec, y_spec = pipeline.element_spec
    assert x_spec.shape[1:] == (40,) and x_spec.dtype == tf.float32
    assert y_spec.dtype == tf.int32
    first, second = _passes(pipeline, 2)
    assert (first != second).any()
    np.testing.assert_array_equal(np.sort(first), np.sort(ds.y_train))
    again = _passes(ds.pipeline("train", batch_size=100, shuffle=True, seed=0), 2)
    np.testing.assert_array_equal(again[0], first)
    np.testing.assert_array_equal(again[1], second)
    other_seed = _passes(ds.pipeline("train", batch_size=100, shuffle=True, seed=1), 1)[0]
    assert (other_seed != first).any()


def test_shuffled_batches_keep_inputs_with_their_labels():
    ds = load_dataset("digits")
    x, y = ds.as_numpy("train")
    by_row = {row.tobytes(): label for row, label in zip(x, y)}
    for x_batch, y_batch in ds.pipeline("train", batch_size=64, seed=5):
        assert [by_row[row.tobytes()] for row in x_batch.numpy()] == list(y_batch.numpy())


def test_resumed_pipeline_replays_the_orders_of_an_uninterrupted_one():
    ds = load_dataset("mnist1d")
    uninterrupted = _passes(ds.pipeline("train", batch_size=100, seed=4), 3)
    resumed = _passes(ds.pipeline("train", batch_size=100, seed=4, initial_epoch=2), 1)
    np.testing.assert_array_equal(resumed[0], uninterrupted[2])


def test_numpy_batches_are_the_pipelines_batches_epoch_after_epoch():
    ds = load_dataset("mnist1d")
    passes = ds.pipeline("train", batch_size=1000, seed=4)
    pipeline = [list(passes) for _ in range(3)]
    batches = ds.batches("train", batch_size=1000, seed=4)
    for epoch in pipeline:
        for x_expected, y_expected in epoch:
            x_batch, y_batch = next(batches)
            np.testing.assert_array_equal(x_batch, x_expected.numpy())
            np.testing.assert_array_equal(y_batch, y_expected.numpy())
    resumed = ds.batches("train", batch_size=1000, seed=4, initial_epoch=2)
    np.testing.assert_array_equal(next(resumed)[1], pipeline[2][0][1].numpy())
    with pytest.raises(ValueError, match=r"`seed`.*Received: seed=-1"):
        ds.batches("train", seed=-1)


def test_keras_fit_takes_exactly_one_pass_per_epoch():
    # Resuming on TensorFlow relies on this: with or without steps_per_epoch,
    # epoch e of fit() is pass e of the pipeline.
    ds = load_dataset("mnist1d")
    model = keras.Sequential([keras.Input((40,)), keras.layers.Dense(10)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # On JAX, fit would otherwise read a pass of the pipeline to build loss and metrics.
    model.test_on_batch(*(a[:1] for a in ds.as_numpy("train")))
    for steps_per_epoch in (None, 36):
        pipeline = ds.pipeline("train", batch_size=100, shuffle=True, seed=0)
        model.fit(pipeline, epochs=2, steps_per_epoch=steps_per_epoch, shuffle=False, verbose=0)
        next_pass = _passes(pipeline, 1)[0]
        expected = _passes(ds.pipeline("train", batch_size=100, seed=0, initial_epoch=2), 1)[0]
        np.testing.assert_array_equal(next_pass, expected)


def test_unshuffled_pipeline_keeps_order_and_last_short_batch():
    ds = load_dataset("mnist1d")
    batches = list(ds.pipeline("val", batch_size=300))
    assert [int(x.shape[0]) for x, _ in batches] == [300, 100]
    np.testing.assert_array_equal(np.concatenate([x.numpy() for x, _ in batches]), ds.x_val)
    dropped = ds.pipeline("val", batch_size=300, drop_remainder=True)
    assert int(dropped.cardinality()) == 1


def test_shuffled_pipeline_with_a_short_last_batch():
    ds = load_dataset("mnist1d")
    pipeline = ds.pipeline("train", batch_size=1000, seed=0)
    sizes = [int(x.shape[0]) for x, _ in pipeline]
    assert sizes == [1000, 1000, 1000, 600] and int(pipeline.cardinality()) == 4
    assert [int(x.shape[0]) for x, _ in ds.pipeline("train", 1000, drop_remainder=True)] == [1000] * 3


# --- TFDS datasets prepared in data_dir ---------------------------------------


def test_tfds_dataset_prepared_elsewhere_loads_through_load_dataset(tmp_path):
    builder = CopiedShapes(data_dir=str(tmp_path))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    ds = load_dataset("kerasreg_test_copied_shapes", data_dir=tmp_path, validation_split=0.2)
    assert ds.input_shape == (6, 6, 1)
    assert ds.num_classes == 3
    assert ds.class_names == ("circle", "square", "triangle")
    assert ds.sizes == {"train": 48, "val": 12, "test": 30}
    raw_x, raw_y = tfds.as_numpy(builder.as_dataset(split="test", batch_size=-1, as_supervised=True))
    np.testing.assert_array_equal(ds.x_test, raw_x.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(ds.y_test, raw_y)
    assert ds.x_train.dtype == np.float32 and 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0


def test_registered_tfds_dataset_needs_download_true_to_prepare(tmp_path, capsys):
    with pytest.raises(DatasetNotPreparedError):
        load_dataset("kerasreg_test_registered_shapes", data_dir=tmp_path)
    ds = load_dataset("kerasreg_test_registered_shapes", data_dir=tmp_path, download=True)
    assert ds.sizes == {"train": 54, "val": 6, "test": 30}
    assert "downloading and preparing dataset 'kerasreg_test_registered_shapes'" in capsys.readouterr().err


def test_unprepared_tfds_dataset_fails_fast_with_instructions(tmp_path):
    start = time.perf_counter()
    with pytest.raises(DatasetNotPreparedError) as error:
        load_dataset("mnist", data_dir=tmp_path)
    elapsed = time.perf_counter() - start
    assert elapsed < 5, f"the offline failure took {elapsed:.1f} s"
    message = str(error.value)
    assert isinstance(error.value, FileNotFoundError)
    assert "Dataset 'mnist' is not prepared in " + str(tmp_path) in message
    assert f"tfds build mnist --data_dir {tmp_path}" in message
    assert "download=True" in message
    assert os.listdir(tmp_path) == []


# --- argument errors ---------------------------------------------------------


@pytest.mark.parametrize(
    "name, suggestion",
    [("mnist1f", "mnist1d"), ("digit", "digits"), ("fashion_mnst", "fashion_mnist")],
)
def test_unknown_name_suggests_the_closest(name, suggestion):
    with pytest.raises(ValueError, match=rf"Unknown dataset '{name}'\. Did you mean '{suggestion}'\?"):
        load_dataset(name)


def test_unknown_name_lists_built_ins_and_the_data_dir(data_dir):
    with pytest.raises(ValueError, match=r"Built-in datasets: digits, mnist1d, mnist5k\. Any TFDS dataset") as error:
        load_dataset("qqqqqq")
    assert "Did you mean" not in str(error.value)
    assert data_dir in str(error.value)


@pytest.mark.parametrize("value", [0, 0.0, 1, 1.0, 1.5, -0.1, True, "0.1", None])
def test_invalid_validation_split(value):
    expected = (
        r"Invalid value received for argument `validation_split`\. Expected a float in "
        rf"\(0, 1\)\. Received: validation_split={value!r}"
    )
    with pytest.raises(ValueError, match=expected):
        load_dataset("mnist1d", validation_split=value)


def test_validation_split_too_small_to_hold_an_example():
    with pytest.raises(ValueError, match=r"at least one example for validation.*validation_split=1e-05"):
        load_dataset("digits", validation_split=1e-5)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", None, 2**32])
def test_invalid_seed(seed):
    expected = re.escape(f"argument `seed`. Expected an int in [0, 2**32). Received: seed={seed!r}")
    with pytest.raises(ValueError, match=expected):
        load_dataset("mnist1d", seed=seed)


def test_invalid_split_and_batch_size():
    ds = load_dataset("digits")
    bad_split = r"Expected one of train, val, test\. Received: split='validation'"
    with pytest.raises(ValueError, match=bad_split):
        ds.as_numpy("validation")
    bad_batch_size = r"argument `batch_size`\. Expected a positive int\. Received: batch_size=0"
    with pytest.raises(ValueError, match=bad_batch_size):
        ds.pipeline("train", batch_size=0)


# --- listing and describing --------------------------------------------------


def test_list_datasets_shows_built_ins_and_prepared_tfds_datasets(tmp_path):
    listings = list_datasets(data_dir=tmp_path)
    assert [item.name for item in listings] == ["digits", "mnist1d", "mnist5k"]
    assert all(item.source == "built-in" and not item.prepared for item in listings)
    CopiedShapes(data_dir=str(tmp_path)).download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False)
    )
    listings = list_datasets(data_dir=tmp_path)
    assert [item.name for item in listings] == ["digits", "kerasreg_test_copied_shapes", "mnist1d", "mnist5k"]
    copied = listings[1]
    assert (copied.source, copied.prepared, copied.version) == ("tfds", True, "1.0.0")
    assert copied.description == "Tiny random images for kerasreg tests."
    assert [item.name for item in list_datasets("*mnist*", data_dir=tmp_path)] == ["mnist1d", "mnist5k"]
    table = format_dataset_list(listings, data_dir=tmp_path)
    assert "kerasreg_test_copied_shapes  tfds" in table
    assert "on first use" in table and f"data_dir: {tmp_path}" in table


def test_list_datasets_marks_prepared_built_ins(data_dir):
    load_dataset("digits")
    digits = list_datasets("digits")[0]
    assert digits.prepared and digits.path == os.path.join(data_dir, "digits", "1.0.0")


def test_dataset_info_describes_without_preparing(tmp_path):
    text = dataset_info("mnist1d", data_dir=tmp_path)
    assert text.startswith("mnist1d (built-in, not prepared, version 1.0.0)")
    assert "input: 'signal', shape (40,), float32" in text
    assert "10 classes" in text and "Greydanus" in text
    assert not os.path.exists(tmp_path / "mnist1d")
    mnist = dataset_info("mnist", data_dir=tmp_path)
    assert "mnist (tfds, not prepared" in mnist and "tfds build mnist" in mnist
    with pytest.raises(ValueError, match=r"Did you mean 'mnist1d'"):
        dataset_info("mnist1f", data_dir=tmp_path)


def test_dataset_info_of_a_prepared_dataset_gives_split_sizes(data_dir):
    load_dataset("digits")
    text = dataset_info("digits")
    assert "digits (built-in, prepared, version 1.0.0)" in text
    assert "splits: test 450, train 1347" in text
    assert "label: 'label', 10 classes" in text


def test_describe_summarises_the_loaded_splits():
    text = load_dataset("mnist1d").describe()
    assert "Dataset 'mnist1d' (built-in)" in text
    assert "train 3600 / val 400 / test 1000" in text


# --- preparation -------------------------------------------------------------


def test_racing_first_loads_prepare_once(tmp_path, monkeypatch, capsys):
    calls = []
    generate = builders.Digits._split_generators

    def counted(self, dl_manager):
        calls.append(1)
        time.sleep(0.2)  # Widen the window in which the other loader arrives.
        return generate(self, dl_manager)

    monkeypatch.setattr(builders.Digits, "_split_generators", counted)
    results, errors = [], []

    def load():
        try:
            results.append(loading._prepared_builder("digits", str(tmp_path), download=False))
        except Exception as error:  # Surface thread failures in the test.
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(calls) == 1
    assert all(builder.info.splits["train"].num_examples == 1347 for builder in results)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("generating dataset 'digits'") == 1
