"""`Dataset.from_arrays`: numpy arrays in memory, split like the built-ins, accepted wherever a dataset is."""

import numpy as np
import pytest

import kerasreg
from kerasreg.data import loading


def test_from_arrays_carves_validation_exactly_as_load_dataset_does(data_dir):
    loaded = kerasreg.load_dataset("mnist1d", validation_split=0.15, seed=3)
    raw = loading._load_raw("mnist1d", data_dir, download=False)
    made = kerasreg.Dataset.from_arrays(raw.x_train, raw.y_train, raw.x_test, raw.y_test,
                                        validation_split=0.15, seed=3, name="mnist1d")
    for split in ("train", "val", "test"):
        for got, expected in zip(made.as_numpy(split), loaded.as_numpy(split)):
            np.testing.assert_array_equal(got, expected)
    assert made.num_classes == 10 and made.split_seed == 3


def test_without_test_arrays_a_seeded_test_part_is_held_out():
    x, y = np.arange(200, dtype=np.float32).reshape(100, 2), np.arange(100) % 4
    first, again = (kerasreg.Dataset.from_arrays(x, y, seed=1) for _ in range(2))
    other = kerasreg.Dataset.from_arrays(x, y, seed=2)
    assert first.sizes == {"train": 72, "val": 8, "test": 20}
    np.testing.assert_array_equal(first.x_test, again.x_test)
    assert not np.array_equal(first.x_test, other.x_test)
    everything = np.concatenate([first.as_numpy(s)[0] for s in ("train", "val", "test")])
    np.testing.assert_array_equal(np.sort(everything[:, 0]), x[:, 0])


def test_string_labels_and_uint8_images():
    x = np.full((12, 4, 4, 3), 255, np.uint8)
    y = np.array(["dog", "cat", "emu"] * 4)
    data = kerasreg.Dataset.from_arrays(x, y, test_split=0.25, name="pets")
    assert data.class_names == ("cat", "dog", "emu") and data.input_shape == (4, 4, 3)
    assert data.x_train.dtype == np.float32 and data.x_train.max() == 1.0
    assert "Dataset 'pets' (in memory) from arrays in memory" in data.describe()


def test_train_reestimate_and_mc_dropout_accept_a_dataset_from_arrays():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    data = kerasreg.Dataset.from_arrays(x, y, name="halves")
    model = kerasreg.build_model("mlp", placement="bn_act_drop", widths=(8,), input_shape=data.input_shape,
                                 num_classes=data.num_classes, seed=0)
    result = kerasreg.train(model, data, epochs=2, batch_size=32, seed=0, verbose=0)
    assert result.config["dataset"] == "halves" and len(result.history["loss"]) == 2
    fixed = kerasreg.reestimate_batch_norm(result.model, data)
    assert fixed is not result.model
    prediction = kerasreg.predict_mc(result.model, data, samples=3, seed=0)
    assert prediction.mean.shape == (len(data.x_test), 2)


X = np.ones((6, 3), np.float32)
Y = np.array([0, 1, 0, 1, 0, 1])


@pytest.mark.parametrize("x, y, message", [
    ([[1.0, 2.0], [1.0]] * 3, Y, r"`x_train` is ragged"),
    (X, Y[:5], r"`x_train` has 6 examples but `y_train` has 5 labels"),
    (np.where(np.eye(6, 3) > 0, np.inf, X), Y, r"`x_train` has a inf feature value in row 0"),
    (X, np.array([0, 2, 0, 2, 0, 2]), r"labels with gaps: 0..2 without 1"),
    (X, Y - 1, r"negative labels"),
    (X, Y + 0.5, r"float labels"),
])
def test_bad_arrays_are_refused_naming_the_problem(x, y, message):
    with pytest.raises(ValueError, match=message):
        kerasreg.Dataset.from_arrays(x, y)


@pytest.mark.parametrize("model, shape", [("cnn2d", (12, 10, 3)), ("resnet_small", (9, 9, 3)),
                                          ("mlp", (6, 6, 2)), ("mlp", (7,))])
def test_models_build_and_train_for_any_input_shape_and_class_count(model, shape):
    rng = np.random.default_rng(0)
    x = rng.random((60, *shape)).astype(np.float32)
    data = kerasreg.Dataset.from_arrays(x, np.arange(60) % 5)
    options = {"mlp": {"widths": (8,)}, "cnn2d": {"filters": (4,)}, "resnet_small": {"filters": 4, "stages": 1}}
    net = kerasreg.build_model(model, input_shape=shape, num_classes=5, seed=0, **options[model])
    result = kerasreg.train(net, data, epochs=1, batch_size=30, seed=0, verbose=0)
    assert result.model.output_shape == (None, 5) and np.isfinite(result.history["loss"]).all()


def test_a_model_built_for_other_inputs_fails_before_training_naming_both_shapes(tmp_path):
    data = kerasreg.Dataset.from_arrays(np.ones((20, 13), np.float32), np.arange(20) % 2, name="thirteen")
    net = kerasreg.build_model("mlp", input_shape=(40,), num_classes=2, seed=0)
    with pytest.raises(ValueError, match=r"Model 'mlp' takes inputs of shape \(40,\) but dataset 'thirteen' "
                                         r"has inputs of shape \(13,\)"):
        kerasreg.train(net, data, epochs=1, run_dir=tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


def test_train_command_names_the_model_and_dataset_shapes_when_they_do_not_fit(tmp_path, capsys):
    from kerasreg import cli

    code = cli.main(["train", "--model", "cnn2d", "--dataset", "mnist1d", "--epochs", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "model 'cnn2d'. Expected (height, width) or (height, width, channels)" in err
    assert "the input shape of dataset 'mnist1d': (40,)" in err
