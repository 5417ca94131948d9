"""Tests for kerasreg.callbacks on small Keras models and synthetic data."""

import csv
import doctest
import json
import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasreg.training import early_stopping, variance_shift  # noqa: E402
from kerasreg.training import gap as gap_module  # noqa: E402
from kerasreg.training import (  # noqa: E402
    GapEarlyStopping,
    OverfittingGap,
    VarianceShiftMonitor,
)

# Many tiny models, each compiled for a step or two (conftest.py).
pytestmark = pytest.mark.usefixtures("quick_compile")

NUM_FEATURES = 20
NUM_CLASSES = 4
GAP_KEYS = (
    "train_clean_loss",
    "train_clean_accuracy",
    "clean_gap_loss",
    "clean_gap_accuracy",
    "reported_gap_loss",
    "reported_gap_accuracy",
)


def make_data(num_rows, seed=0, label_noise=1.0):
    """Labels from a random linear teacher plus noise: learnable, not trivial."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_rows, NUM_FEATURES)).astype("float32")
    teacher = np.random.default_rng(123).normal(size=(NUM_FEATURES, NUM_CLASSES))
    logits = x @ teacher + label_noise * rng.normal(size=(num_rows, NUM_CLASSES))
    return x, np.argmax(logits, axis=1).astype("int64")


@pytest.fixture(scope="module")
def data():
    x, y = make_data(800)
    return (x[:600], y[:600]), (x[600:], y[600:])


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)


def mlp(order="bn_act_drop", *, width=32, blocks=1, rate=0.3, momentum=0.99, l2=None):
    """A small MLP whose blocks follow one of the built-in placements."""
    tokens = {
        "bn_act_drop": ("norm", "act", "drop"),
        "drop_before_bn": ("act", "drop", "norm"),
        "bn_before_act": ("norm", "act"),
        "none": ("act",),
    }[order]
    regularizer = keras.regularizers.L2(l2) if l2 else None
    layers = [keras.Input((NUM_FEATURES,))]
    for i in range(blocks):
        layers.append(keras.layers.Dense(width, kernel_regularizer=regularizer))
        for token in tokens:
            if token == "norm":
                layers.append(keras.layers.BatchNormalization(momentum=momentum, name=f"bn_{i}"))
            elif token == "act":
                layers.append(keras.layers.ReLU())
            else:
                layers.append(keras.layers.Dropout(rate, seed=i))
    layers.append(keras.layers.Dense(NUM_CLASSES, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def weights_recorder(model, store):
    return keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: store.append(model.get_weights())
    )


def assert_weights_equal(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_array_equal(a, e)


# OverfittingGap


@pytest.mark.parity
def test_gap_matches_independent_evaluation(tmp_path, data):
    train, val = data
    # L2 makes `model.losses` non-empty: evaluate adds it, so must the callback.
    model = mlp(l2=1e-3)
    gap = OverfittingGap(train, validation_data=val, seed=3, log_path=tmp_path)
    per_epoch_weights = []
    csv_path = tmp_path / "history.csv"
    epochs = 3
    history = model.fit(
        *train,
        validation_data=val,
        epochs=epochs,
        batch_size=32,
        verbose=0,
        callbacks=[
            gap,
            weights_recorder(model, per_epoch_weights),
            keras.callbacks.CSVLogger(str(csv_path)),
        ],
    )
    hist = history.history

    # Default subset size is the validation size; rows come from train.
    x_sub, y_sub = gap.subset
    assert len(y_sub) == len(val[1])
    np.testing.assert_array_equal(x_sub, train[0][gap.subset_indices])

    for epoch in range(epochs):
        model.set_weights(per_epoch_weights[epoch])
        expected = model.evaluate(x_sub, y_sub, batch_size=64, verbose=0, return_dict=True)
        np.testing.assert_allclose(
            hist["train_clean_loss"][epoch], expected["loss"], rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(
            hist["train_clean_accuracy"][epoch], expected["accuracy"], rtol=0, atol=1e-6
        )

    for key in GAP_KEYS:
        assert len(hist[key]) == epochs
    val_loss, loss_, val_acc, acc = (
        np.array(hist[k]) for k in ("val_loss", "loss", "val_accuracy", "accuracy")
    )
    np.testing.assert_allclose(
        hist["clean_gap_loss"], val_loss - np.array(hist["train_clean_loss"]), atol=1e-6
    )
    np.testing.assert_allclose(
        hist["clean_gap_accuracy"], np.array(hist["train_clean_accuracy"]) - val_acc, atol=1e-6
    )
    np.testing.assert_allclose(hist["reported_gap_loss"], val_loss - loss_, atol=1e-6)
    np.testing.assert_allclose(hist["reported_gap_accuracy"], acc - val_acc, atol=1e-6)

    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(epochs))
    for key in GAP_KEYS:
        np.testing.assert_allclose([float(r[key]) for r in rows], hist[key], rtol=1e-6)

    lines = (tmp_path / "gaps.jsonl").read_text().splitlines()
    assert len(lines) == epochs
    records = [json.loads(line) for line in lines]
    assert [r["epoch"] for r in records] == list(range(epochs))
    assert records == gap.records
    for key in GAP_KEYS + ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose([r[key] for r in records], hist[key], rtol=1e-6)


def run_epochs(callback, model, logs_per_epoch):
    """Drive a callback through `fit`'s hooks without training."""
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, logs in enumerate(logs_per_epoch):
        callback.on_epoch_end(epoch, logs)
    callback.on_train_end()


EPOCH_LOGS = {"loss": 1.0, "accuracy": 0.5, "val_loss": 1.2, "val_accuracy": 0.4}


def test_gap_uses_compiled_loss_object(data):
    """A loss object (here on logits) is used as compiled, with its options."""
    train, _ = data
    model = keras.Sequential([keras.Input((NUM_FEATURES,)), keras.layers.Dense(NUM_CLASSES)])
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    gap = OverfittingGap(train, subset_size=100)
    logs = dict(EPOCH_LOGS)
    run_epochs(gap, model, [logs])
    expected = model.evaluate(*gap.subset, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["train_clean_loss"], expected["loss"], rtol=1e-5)
    np.testing.assert_allclose(logs["train_clean_accuracy"], expected["accuracy"], atol=1e-6)


def test_log_file_is_truncated_unless_appending(tmp_path, data):
    model = mlp()
    log_file = tmp_path / "run" / "my_gaps.jsonl"
    for append, expected_lines in ((False, 2), (False, 2), (True, 4)):
        gap = OverfittingGap(data[0], subset_size=50, log_path=log_file, append=append)
        run_epochs(gap, model, [dict(EPOCH_LOGS), dict(EPOCH_LOGS)])
        assert len(log_file.read_text().splitlines()) == expected_lines


def test_subset_from_dataset_equals_subset_from_arrays(data):
    train, val = data
    from_arrays = OverfittingGap(train, subset_size=50, seed=7)
    from_dataset = OverfittingGap(tf.data.Dataset.from_tensor_slices(train), subset_size=50, seed=7)
    np.testing.assert_array_equal(from_arrays.subset_indices, from_dataset.subset_indices)
    np.testing.assert_array_equal(from_arrays.subset[0], from_dataset.subset[0])
    np.testing.assert_array_equal(from_arrays.subset[1], from_dataset.subset[1])

    # Unknown cardinality (after a filter) is counted once.
    unknown = tf.data.Dataset.from_tensor_slices(train).filter(lambda x, y: True)
    assert len(OverfittingGap(unknown, seed=7).subset[1]) == len(train[1])


def test_default_subset_size(data):
    train, val = data
    assert len(OverfittingGap(train).subset[1]) == len(train[1])  # 1000 capped at 600
    assert len(OverfittingGap(train, validation_data=val).subset[1]) == len(val[1])
    assert len(
        OverfittingGap(train, validation_data=tf.data.Dataset.from_tensor_slices(val)).subset[1]
    ) == len(val[1])
    assert len(OverfittingGap(train, validation_data=val, subset_size=10).subset[1]) == 10


def test_chunked_evaluation_equals_one_pass(data):
    train, _ = data
    model = mlp()
    results = []
    for batch_size in (1024, 64):
        gap = OverfittingGap(train, subset_size=200, batch_size=batch_size)
        gap.set_model(model)
        results.append(gap.evaluate_subset())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


def test_gap_requires_validation_data(data):
    gap = OverfittingGap(data[0], subset_size=10)
    with pytest.raises(
        ValueError, match="needs validation metrics, but `val_loss` is not in the epoch logs"
    ):
        run_epochs(gap, mlp(), [{"loss": 1.0, "accuracy": 0.5}])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"subset_size": 0},
            r"`subset_size`. Expected an int in \[1, 600\].*Received: subset_size=0",
        ),
        ({"subset_size": 601}, r"Received: subset_size=601"),
        ({"subset_size": 2.5}, r"Received: subset_size=2.5"),
        ({"batch_size": 0}, r"`batch_size`. Expected a positive int. Received: batch_size=0"),
    ],
)
def test_gap_bad_arguments(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        OverfittingGap(data[0], **kwargs)


def test_gap_bad_train_data():
    with pytest.raises(ValueError, match="Invalid value received for argument `train_data`"):
        OverfittingGap("not data")
    with pytest.raises(ValueError, match="infinite dataset"):
        OverfittingGap(tf.data.Dataset.from_tensor_slices(np.zeros((4, 2))).repeat())


def test_gap_rejects_batched_dataset(data):
    gap = OverfittingGap(tf.data.Dataset.from_tensor_slices(data[0]).batch(10), subset_size=5)
    with pytest.raises(
        ValueError, match=r"rank 3 but the model expects inputs of rank 2.*dataset.unbatch\(\)"
    ):
        run_epochs(gap, mlp(), [dict(EPOCH_LOGS)])


# GapEarlyStopping


def drive(callback, gaps, val_losses, model, monitor="clean_gap_loss", best_metric="val_loss"):
    """Feed scripted epoch logs; epoch e's weights are all equal to e."""
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    for epoch, (gap, val_loss) in enumerate(zip(gaps, val_losses)):
        model.set_weights([np.full_like(w, epoch) for w in model.get_weights()])
        callback.on_epoch_end(epoch, {monitor: gap, best_metric: val_loss})
        if model.stop_training:
            break
    callback.on_train_end()
    return epoch


@pytest.fixture
def tiny_model():
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])


def test_early_stopping_on_threshold(tiny_model, capsys):
    callback = GapEarlyStopping(threshold=0.5)
    last = drive(callback, [0.1, 0.3, 0.6, 0.2], [1.0, 0.8, 0.9, 0.7], tiny_model)
    assert last == 2 and callback.stopped_epoch == 2
    assert callback.stop_reason == "clean_gap_loss=0.6 exceeded threshold=0.5"
    assert callback.best_epoch == 1
    assert_weights_equal(
        tiny_model.get_weights(), [np.full_like(w, 1) for w in tiny_model.get_weights()]
    )
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0
    assert out == (
        "Epoch 3: GapEarlyStopping stopped training: clean_gap_loss=0.6 exceeded threshold=0.5; "
        "restored weights from epoch 2 (val_loss=0.8)."
    )


def test_early_stopping_on_patience(tiny_model):
    callback = GapEarlyStopping(patience=3, verbose=0)
    # Growth at epochs 2, 3, 4 (epoch 1 shrank).
    last = drive(
        callback, [0.1, 0.05, 0.1, 0.2, 0.3, 0.4], [1.0, 0.9, 0.8, 0.85, 0.9, 1.0], tiny_model
    )
    assert last == 4 and callback.stopped_epoch == 4
    assert "grew for 3 consecutive epochs" in callback.stop_reason
    assert_weights_equal(
        tiny_model.get_weights(), [np.full_like(w, 2) for w in tiny_model.get_weights()]
    )

    # An interrupted run of growth resets the count.
    callback = GapEarlyStopping(patience=3, verbose=0)
    drive(callback, [0.1, 0.2, 0.3, 0.25, 0.3, 0.4], [1.0] * 6, tiny_model)
    assert callback.stopped_epoch is None and callback.stop_reason is None

    # Growth smaller than min_delta does not count.
    callback = GapEarlyStopping(patience=2, min_delta=0.05, verbose=0)
    drive(callback, [0.1, 0.11, 0.12, 0.13], [1.0] * 4, tiny_model)
    assert callback.stopped_epoch is None


def test_early_stopping_accuracy_metrics(tiny_model):
    callback = GapEarlyStopping(
        threshold=0.1, monitor="clean_gap_accuracy", best_metric="val_accuracy", verbose=0
    )
    drive(
        callback,
        [0.0, 0.05, 0.2],
        [0.5, 0.7, 0.6],
        tiny_model,
        monitor="clean_gap_accuracy",
        best_metric="val_accuracy",
    )
    assert callback.stopped_epoch == 2 and callback.best_epoch == 1 and callback.best_value == 0.7
    assert_weights_equal(
        tiny_model.get_weights(), [np.full_like(w, 1) for w in tiny_model.get_weights()]
    )


def test_early_stopping_without_restore(tiny_model):
    callback = GapEarlyStopping(threshold=0.5, restore_best_weights=False, verbose=0)
    drive(callback, [0.1, 0.6], [0.5, 0.9], tiny_model)
    assert callback.best_weights is None
    assert_weights_equal(
        tiny_model.get_weights(), [np.full_like(w, 1) for w in tiny_model.get_weights()]
    )


@pytest.mark.parity
def test_early_stopping_in_fit_restores_best_weights(capsys):
    # 64 examples with noisy labels and a wide net: the clean gap grows fast.
    x, y = make_data(264, seed=5, label_noise=3.0)
    train, val = (x[:64], y[:64]), (x[64:], y[64:])
    model = mlp("none", width=128)
    model.optimizer.learning_rate = 0.01
    per_epoch_weights = []
    stopper = GapEarlyStopping(threshold=1.0)
    history = model.fit(
        *train,
        validation_data=val,
        epochs=60,
        batch_size=16,
        verbose=0,
        callbacks=[OverfittingGap(train), stopper, weights_recorder(model, per_epoch_weights)],
    )
    gaps = history.history["clean_gap_loss"]
    assert stopper.stopped_epoch is not None and stopper.stopped_epoch < 59
    assert len(gaps) == stopper.stopped_epoch + 1
    assert gaps[-1] > 1.0 and max(gaps[:-1]) <= 1.0
    best = int(np.argmin(history.history["val_loss"]))
    # Validation loss turned up before the gap crossed the threshold, so
    # restoring is visible: the final weights are not the last epoch's.
    assert stopper.best_epoch == best < stopper.stopped_epoch
    assert_weights_equal(model.get_weights(), per_epoch_weights[best])
    assert "GapEarlyStopping stopped training: clean_gap_loss=" in capsys.readouterr().out


def test_early_stopping_needs_overfitting_gap(tiny_model):
    with pytest.raises(
        ValueError,
        match="`clean_gap_loss`, which is not in the epoch logs. Put an `OverfittingGap` callback before",
    ):
        run_epochs(GapEarlyStopping(patience=1), tiny_model, [dict(EPOCH_LOGS)])
    with pytest.raises(ValueError, match="`val_accuracy`, which is not in the epoch logs"):
        run_epochs(
            GapEarlyStopping(patience=1, best_metric="val_accuracy"),
            tiny_model,
            [{"clean_gap_loss": 0.1, "val_loss": 1.0}],
        )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {},
            r"Expected `threshold` \(a float\), `patience` \(a positive int\) or both. Received: threshold=None, patience=None",
        ),
        ({"patience": 0}, r"`patience`. Expected a positive int or None. Received: patience=0"),
        ({"patience": 1.5}, r"Received: patience=1.5"),
        ({"threshold": "big"}, r"`threshold`. Expected a float or None. Received: threshold='big'"),
        (
            {"threshold": 0.1, "min_delta": -1},
            r"`min_delta`. Expected a float >= 0. Received: min_delta=-1",
        ),
    ],
)
def test_early_stopping_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GapEarlyStopping(**kwargs)


# VarianceShiftMonitor


def test_variance_shift_dropout_before_bn_vs_bn_before_act(data):
    """Li et al.: dropout feeding BN shifts the variance; BN before ReLU does not."""
    tf.config.experimental.enable_op_determinism()
    train, val = data
    shifts = {}
    for order in ("drop_before_bn", "bn_before_act"):
        keras.utils.set_random_seed(0)
        # momentum 0.9 so the moving variance tracks the data within a few epochs.
        model = mlp(order, width=64, blocks=2, rate=0.5, momentum=0.9)
        monitor = VarianceShiftMonitor(val[0])
        history = model.fit(*train, epochs=4, batch_size=50, verbose=0, callbacks=[monitor])
        assert monitor.layer_names == ["bn_0", "bn_1"]
        for key in (
            "variance_shift/bn_0",
            "variance_shift/bn_1",
            "variance_shift_mean",
            "variance_shift_max",
        ):
            assert len(history.history[key]) == 4
        shifts[order] = {
            name: history.history[f"variance_shift/{name}"][-1] for name in monitor.layer_names
        }
        shifts[order]["max"] = history.history["variance_shift_max"][-1]

    # Inference variance well below the moving variance accumulated with dropout on.
    assert all(shifts["drop_before_bn"][name] < 0.6 for name in ("bn_0", "bn_1")), shifts
    assert shifts["drop_before_bn"]["max"] > 1.6, shifts
    assert all(0.85 < shifts["bn_before_act"][name] < 1.15 for name in ("bn_0", "bn_1")), shifts
    assert shifts["bn_before_act"]["max"] < 1.15, shifts


@keras.saving.register_keras_serializable(package="kerasreg_tests")
class DenseBN(keras.layers.Layer):
    """A custom block holding its own BN layer (not reachable via model.layers)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(units)
        self.bn = keras.layers.BatchNormalization(name="custom_bn")

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.bn.build(self.dense.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        return keras.ops.relu(self.bn(self.dense(inputs), training=training))


@pytest.mark.parity
def test_variance_shift_finds_nested_layers_and_matches_numpy(tmp_path, data):
    train, val = data
    inputs = keras.Input((NUM_FEATURES,))
    h = keras.layers.Dense(16)(inputs)
    h = keras.layers.BatchNormalization(name="top_bn")(h)
    block_input = keras.layers.ReLU()(h)
    block = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(16),
            keras.layers.BatchNormalization(name="inner_bn"),
            keras.layers.ReLU(),
        ],
        name="block",
    )
    custom_input = keras.layers.Add()([block_input, block(block_input)])
    custom = DenseBN(16, name="custom")
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(custom(custom_input))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])

    monitor = VarianceShiftMonitor((val[0][:128], val[1][:128]), log_path=tmp_path)
    history = model.fit(*train, epochs=2, batch_size=50, verbose=0, callbacks=[monitor])
    assert monitor.layer_names == ["top_bn", "inner_bn", "custom_bn"]

    x = val[0][:128]
    top_bn = model.get_layer("top_bn")
    inner_bn = block.get_layer("inner_bn")
    feeds = {
        top_bn: keras.Model(inputs, top_bn.input)(x),
        inner_bn: keras.Model(block.inputs, inner_bn.input)(keras.Model(inputs, block_input)(x)),
        custom.bn: custom.dense(keras.Model(inputs, custom_input)(x)),
    }
    feeds = {layer: np.asarray(feed) for layer, feed in feeds.items()}
    expected = {
        layer.name: np.mean(
            (feed.var(axis=0) + layer.epsilon) / (layer.moving_variance.numpy() + layer.epsilon)
        )
        for layer, feed in feeds.items()
    }
    measured = monitor.variance_shift()
    for name in expected:
        np.testing.assert_allclose(measured[name], expected[name], rtol=1e-4)
        np.testing.assert_allclose(
            history.history[f"variance_shift/{name}"][-1], expected[name], rtol=1e-4
        )
    np.testing.assert_allclose(
        history.history["variance_shift_mean"][-1], np.mean(list(expected.values())), rtol=1e-4
    )
    np.testing.assert_allclose(
        history.history["variance_shift_max"][-1],
        max(max(r, 1 / r) for r in expected.values()),
        rtol=1e-4,
    )

    # The probe leaves no trace on the layers or the model's outputs.
    assert all("call" not in vars(layer) for layer in feeds)
    before = np.asarray(model(x, training=False))
    monitor.variance_shift()
    np.testing.assert_array_equal(np.asarray(model(x, training=False)), before)

    records = [
        json.loads(line) for line in (tmp_path / "variance_shift.jsonl").read_text().splitlines()
    ]
    assert [r["epoch"] for r in records] == [0, 1]
    assert set(records[0]) == {"epoch", "variance_shift_mean", "variance_shift_max"} | {
        f"variance_shift/{name}" for name in expected
    }


def test_variance_shift_without_batch_norm_warns_once(data):
    logs_per_epoch = [dict(EPOCH_LOGS) for _ in range(3)]
    with pytest.warns(UserWarning, match="found no BatchNormalization layer") as record:
        run_epochs(VarianceShiftMonitor(data[0][0][:64]), mlp("none"), logs_per_epoch)
    assert sum("BatchNormalization" in str(w.message) for w in record) == 1
    assert logs_per_epoch == [EPOCH_LOGS] * 3


def test_variance_shift_accepts_dataset(data):
    train, _ = data
    model = mlp()
    from_array = VarianceShiftMonitor(train[0][:64])
    from_dataset = VarianceShiftMonitor(tf.data.Dataset.from_tensor_slices(train).batch(64))
    for monitor in (from_array, from_dataset):
        monitor.set_model(model)
    assert from_array.variance_shift() == pytest.approx(from_dataset.variance_shift(), rel=1e-6)


def test_variance_shift_bad_argument():
    with pytest.raises(ValueError, match="Invalid value received for argument `validation_batch`"):
        VarianceShiftMonitor(None)


def test_docstring_examples():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = [doctest.testmod(module, optionflags=doctest.ELLIPSIS)
                   for module in (gap_module, early_stopping, variance_shift)]
    assert all(r.attempted > 0 and r.failed == 0 for r in results)


def test_evaluate_validation_replaces_fits_validation_pass(data):
    train, val = data
    model = mlp(l2=1e-3)
    gap = OverfittingGap(train, validation_data=val, evaluate_validation=True)
    per_epoch_weights = []
    history = model.fit(*train, epochs=2, batch_size=32, verbose=0,
                        callbacks=[gap, weights_recorder(model, per_epoch_weights)])
    for epoch in range(2):
        model.set_weights(per_epoch_weights[epoch])
        expected = model.evaluate(*val, batch_size=64, verbose=0, return_dict=True)
        np.testing.assert_allclose(history.history["val_loss"][epoch], expected["loss"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(history.history["val_accuracy"][epoch], expected["accuracy"], atol=1e-6)
    assert gap.evaluate(*val) == pytest.approx((expected["loss"], expected["accuracy"]), rel=1e-5)
    with pytest.raises(ValueError, match="needs `validation_data`"):
        OverfittingGap(train, evaluate_validation=True)
