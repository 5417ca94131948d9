"""`diagnose`'s gap parts: what `fit` reports minus what `evaluate` gives on the same rows, taken apart."""

import json

import keras
import numpy as np
import pytest

import kerasreg
from kerasreg import cli

# Runs of an epoch or two: compiling is most of their time (conftest.py).
pytestmark = pytest.mark.usefixtures("quick_compile")

L = keras.layers
BATCH = 32


@pytest.fixture(scope="module")
def data():
    return kerasreg.load_dataset("digits")  # 8x8 grey digits, 10 classes, 1,212 train rows


def _trained(data, *middle, epochs=1, batch_size=BATCH, seed=0, compile=True):
    """A plain Keras classifier on digits trained with `model.fit`; the same seed gives the same model, bit for bit."""
    train = data.as_numpy("train")  # before seeding: preparing the dataset on first use draws random numbers
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8, 8, 1)), L.Flatten(), *middle, L.Dense(10, activation="softmax")])
    if compile:
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(*train, epochs=epochs, batch_size=batch_size, verbose=0)
    return model


def _dropout_and_bn():
    return L.Dense(32), L.Dropout(0.5), L.ReLU(), L.BatchNormalization()


def test_the_parts_add_up_to_what_a_real_fit_epoch_reports_minus_evaluate(data):
    # Twins: the same weights, optimizer state and dropout seeds. Not the first model of the process: its initial
    # weights differ from those of later models built after the same `set_random_seed`.
    _trained(data, L.Dense(2), compile=False)
    model = _trained(data, *_dropout_and_bn())
    twin = _trained(data, *_dropout_and_bn())
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), twin.get_weights()))
    before = [keras.ops.convert_to_numpy(v) for v in model.variables + model.optimizer.variables]
    parts = kerasreg.diagnose(model, data, batch_size=BATCH, seed=3).gap_parts
    after = [keras.ops.convert_to_numpy(v) for v in model.variables + model.optimizer.variables]
    assert all(np.array_equal(a, b) for a, b in zip(before, after)), "the user's model or optimizer changed"

    # The user's next epoch, on the twin: the rows diagnose documents (as many as the validation split, at least ten
    # batches; whole batches in seeded order).
    x, y = data.as_numpy("train")
    rows = max(len(data.as_numpy("val")[1]), 10 * BATCH) // BATCH * BATCH
    order = np.random.default_rng(3).permutation(len(y))[:rows]
    reported = twin.fit(x[order], y[order], batch_size=BATCH, epochs=1, shuffle=False, verbose=0).history
    evaluated = twin.evaluate(x[order], y[order], batch_size=BATCH, verbose=0, return_dict=True)

    assert parts.rows == len(order) and parts.batch_size == BATCH and parts.steps == rows // BATCH
    assert "continuing from its state" in parts.optimizer
    # The same computation as the twin's `fit` (weights, optimizer state, dropout seeds, batches): equal to float32
    # rounding. `evaluate` is another compiled program summing in another order: argmax ties aside, the same
    # accuracy (1e-6 is far below one row), and the loss to float32 sums' precision.
    assert parts.levels["fit"]["accuracy"] == pytest.approx(reported["accuracy"][0], abs=1e-6)
    assert parts.levels["fit"]["loss"] == pytest.approx(reported["loss"][0], rel=1e-5)
    assert parts.levels["evaluate"]["accuracy"] == pytest.approx(evaluated["accuracy"], abs=1e-6)
    assert parts.levels["evaluate"]["loss"] == pytest.approx(evaluated["loss"], rel=1e-4)
    measured_gap = reported["accuracy"][0] - evaluated["accuracy"]
    assert abs(measured_gap) > 0.05, "a planted case with a gap worth taking apart"
    assert sum(p.accuracy for p in parts) == pytest.approx(measured_gap, abs=2e-6)
    assert sum(p.loss for p in parts) == pytest.approx(reported["loss"][0] - evaluated["loss"], rel=1e-3, abs=1e-5)
    assert sum(p.share for p in parts) == pytest.approx(1.0)
    assert all(p.measured for p in parts)


def test_heavy_dropout_after_bn_is_mostly_dropout_noise(data):
    model = _trained(data, L.Dense(64), L.BatchNormalization(), L.ReLU(), L.Dropout(0.8), epochs=3)
    parts = kerasreg.diagnose(model, data).gap_parts
    assert parts.dropout_noise.accuracy < 0 and parts.dropout_noise.share > 0.5, list(parts)
    assert parts.dropout_noise.share == max(p.share for p in parts)
    assert all(p.measured for p in parts)


def test_a_model_without_bn_has_no_batch_statistics_part(data):
    model = _trained(data, L.Dense(64, activation="relu"), L.Dropout(0.5))
    parts = kerasreg.diagnose(model, data).gap_parts
    assert parts.batch_statistics.accuracy == 0.0 and parts.batch_statistics.loss == 0.0
    assert not parts.batch_statistics.measured and parts.levels["dropout_off"] == parts.levels["evaluate"]
    assert parts.dropout_noise.measured and parts.dropout_noise.accuracy != 0.0


def test_bn_at_a_tiny_batch_costs_batch_statistics_and_no_dropout_noise(data):
    model = _trained(data, L.Dense(32), L.BatchNormalization(), L.ReLU(), epochs=3)
    parts = kerasreg.diagnose(model, data, batch_size=2).gap_parts
    # Two rows per batch: each batch's statistics are far from the moving ones, and training-mode accuracy falls.
    assert parts.batch_statistics.accuracy < -0.05, list(parts)
    assert parts.dropout_noise.accuracy == 0.0 and not parts.dropout_noise.measured
    assert parts.batch_size == 2


def test_an_uncompiled_model_trains_its_epoch_with_adam_and_says_so(data):
    model = _trained(data, L.Dense(16, activation="relu"), compile=False)
    result = kerasreg.diagnose(model, data)
    assert result.gap_parts.optimizer == "Adam with Keras's defaults (the model has no optimizer)"
    assert getattr(model, "optimizer", None) is None, "the user's model stays uncompiled"
    lines = result.format()
    assert "dropout noise: 0 (the model has no dropout-kind layer)." in lines
    assert "BatchNorm batch vs moving statistics: 0 (the model has no BatchNormalization layer)." in lines


def test_a_regression_head_is_taken_apart_on_the_loss():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = x[:, :1] * 2.0
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), L.Dense(16), L.Dropout(0.5), L.BatchNormalization(), L.Dense(1)])
    model.compile("adam", "mse")  # compiled, never trained: its optimizer has no state yet
    parts = kerasreg.diagnose(model, ((x[:192], y[:192]), (x[192:], y[192:]))).gap_parts
    assert parts.metric == "loss" and all(p.accuracy is None for p in parts)
    assert sum(p.loss for p in parts) == pytest.approx(parts.gap["loss"])
    assert sum(p.share for p in parts) == pytest.approx(1.0)
    assert "the model's Adam, from a fresh state" in parts.optimizer


def test_the_cli_prints_one_line_per_part_and_writes_them_to_every_file(data, tmp_path, capfd):
    model = _trained(data, *_dropout_and_bn())
    model.save(tmp_path / "model.keras")
    out = tmp_path / "report"
    assert cli.main(["diagnose", str(tmp_path / "model.keras"), "--dataset", "digits", "--out", str(out)]) == 0
    printed = capfd.readouterr().out
    report = json.loads((out / "diagnose.json").read_text())
    parts = report["gap_parts"]
    assert set(parts["parts"]) == {"weight_drift", "dropout_noise", "batch_statistics"}
    assert sum(p["accuracy"] for p in parts["parts"].values()) == pytest.approx(parts["gap"]["accuracy"])
    assert parts["levels"]["fit"]["accuracy"] - parts["levels"]["evaluate"]["accuracy"] == pytest.approx(
        parts["gap"]["accuracy"])
    noise = parts["parts"]["dropout_noise"]
    line = f"dropout noise: {100 * noise['accuracy']:+.1f} points ({noise['share']:.0%} of the gap): dropout is on"
    assert line in printed
    assert "fit vs evaluate on the same training rows, taken apart" in printed
    for name in ("weight drift: ", "BatchNorm batch vs moving statistics: "):
        assert f"\n- {name}" in printed
    assert line in (out / "diagnose.md").read_text() and line in (out / "diagnose.html").read_text()


def test_the_cli_takes_apart_the_gap_of_a_model_without_bn(data, tmp_path, capfd):
    model = _trained(data, L.Dense(16, activation="relu"), L.Dropout(0.3))
    model.save(tmp_path / "no_bn.keras")
    assert cli.main(["diagnose", str(tmp_path / "no_bn.keras"), "--dataset", "digits", "--batch-size", "64"]) == 0
    printed = capfd.readouterr().out
    assert "BatchNorm batch vs moving statistics: 0 (the model has no BatchNormalization layer)." in printed
    assert "\n- dropout noise: " in printed and "\n- weight drift: " in printed
