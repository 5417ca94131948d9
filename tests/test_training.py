"""train(): honest gaps, determinism, divergence and the train CLI (a kill and resume: test_reliability.py)."""

import json
import multiprocessing

import keras
import numpy as np
import pytest

import kerasreg
from kerasreg import cli, runs, training

# Runs of an epoch or two, here and in the processes started: compiling is most of their time (conftest.py).
pytestmark = pytest.mark.usefixtures("quick_compile")


@pytest.fixture(scope="module")
def mnist1d():
    return kerasreg.load_dataset("mnist1d")


def small_mlp(dataset, seed=0, **kwargs):
    training.seed_everything(seed)
    return kerasreg.build_model("mlp", widths=(32, 32), input_shape=dataset.input_shape,
                                num_classes=dataset.num_classes, seed=seed, **kwargs)


@pytest.fixture(scope="module")
def finished_run(mnist1d, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    result = kerasreg.train(small_mlp(mnist1d), mnist1d, epochs=3, run_dir=run_dir, verbose=0)
    return result, run_dir


def test_run_dir_holds_history_gaps_logs_and_model(finished_run):
    result, run_dir = finished_run
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "gaps.jsonl", "history.csv", "logs", "model.keras", "run_config.json", "status.json", "variance_shift.jsonl"]
    assert json.loads((run_dir / "status.json").read_text())["status"] == "completed"
    assert len((run_dir / "gaps.jsonl").read_text().splitlines()) == 3
    assert len(result.epoch_times) == 3 and all(t > 0 for t in result.epoch_times)
    for key in ("clean_gap_accuracy", "reported_gap_loss", "train_clean_loss", "variance_shift_max"):
        assert len(result.history[key]) == 3
    # TensorBoard sees every logged epoch value, laid out as Keras's own callback writes it.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for split, prefix, keys in (("train", "", ("loss", "accuracy", "clean_gap_accuracy")),
                                ("validation", "val_", ("loss", "accuracy"))):
        events = EventAccumulator(str(run_dir / "logs" / split))
        events.Reload()
        for key in keys:
            logged = [(event.step, event.value) for event in events.Scalars(f"epoch_{key}")]
            assert logged == [(e, pytest.approx(v)) for e, v in enumerate(result.history[prefix + key])], key


@pytest.mark.parity
def test_gaps_recomputed_from_saved_model_match_logged(finished_run, mnist1d):
    result, run_dir = finished_run
    model = keras.saving.load_model(run_dir / "model.keras")
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = mnist1d.as_numpy("train")
    idx = result.clean_subset_indices
    assert len(idx) == len(mnist1d.as_numpy("val")[1])
    train_clean = model.evaluate(x[idx], y[idx], verbose=0, return_dict=True)
    val = model.evaluate(*mnist1d.as_numpy("val"), verbose=0, return_dict=True)
    test = model.evaluate(*mnist1d.as_numpy("test"), verbose=0, return_dict=True)
    h = result.history
    np.testing.assert_allclose(h["train_clean_loss"][-1], train_clean["loss"], rtol=1e-4)
    np.testing.assert_allclose(h["val_loss"][-1], val["loss"], rtol=1e-4)
    np.testing.assert_allclose(result.gaps["clean_gap_loss"], val["loss"] - train_clean["loss"], atol=1e-4)
    np.testing.assert_allclose(result.gaps["clean_gap_accuracy"],
                               train_clean["accuracy"] - val["accuracy"], atol=1e-6)
    np.testing.assert_allclose(result.gaps["reported_gap_accuracy"],
                               h["accuracy"][-1] - h["val_accuracy"][-1], atol=1e-6)
    np.testing.assert_allclose(result.test_metrics["accuracy"], test["accuracy"], atol=1e-6)


@pytest.mark.parity
def test_same_seed_gives_identical_weights_and_history(mnist1d):
    first = kerasreg.train(small_mlp(mnist1d, seed=3), mnist1d, epochs=2, seed=3, verbose=0)
    second = kerasreg.train(small_mlp(mnist1d, seed=3), mnist1d, epochs=2, seed=3, verbose=0)
    for a, b in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    for key in ("loss", "val_loss", "clean_gap_loss"):
        assert first.history[key] == second.history[key]
    other = kerasreg.train(small_mlp(mnist1d, seed=4), mnist1d, epochs=2, seed=4, verbose=0)
    assert other.history["loss"] != first.history["loss"]


@pytest.mark.parity
def test_epoch_e_trains_on_the_batches_of_epoch_e_in_order(mnist1d):
    # Replaying the batches by hand on a copy of the initial weights must land on the same weights:
    # a batch consumed elsewhere (e.g. by Keras building its metrics) would shift every epoch's order.
    model = small_mlp(mnist1d, placement="none")
    replay = keras.models.clone_model(model)
    replay.set_weights(model.get_weights())
    result = kerasreg.train(model, mnist1d, epochs=2, optimizer="sgd", learning_rate=0.1, seed=5, verbose=0)
    replay.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    batches = mnist1d.batches("train", 100, seed=5)
    for _ in range(2 * 36):
        replay.train_on_batch(*next(batches))
    for trained, replayed in zip(result.model.get_weights(), replay.get_weights()):
        np.testing.assert_allclose(trained, replayed, rtol=1e-5, atol=1e-6)


@pytest.mark.parity
def test_divergence_stops_with_clear_error_and_is_never_exported(tmp_path):
    config = runs.RunConfig(placement="none", options={"widths": (32,)}, optimizer="sgd", learning_rate=1e20,
                            epochs=5, name="diverges")
    with pytest.raises(training.TrainingFailed, match=r"Training diverged: loss became (nan|inf) at epoch 1"):
        runs.run(config, out=tmp_path, verbose=0)
    assert not (tmp_path / "diverges").exists()
    status = json.loads((tmp_path / runs.WORK_DIR / "diverges" / "status.json").read_text())
    assert status["status"] == "failed" and "diverged" in status["reason"]


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": 0}, r"`epochs`.*Received: epochs=0"),
    ({"batch_size": 2.5}, r"`batch_size`.*Received: batch_size=2.5"),
    ({"optimizer": "adamm"}, r"`optimizer`.*adam.*Received: optimizer='adamm'"),
    ({"learning_rate": -1.0}, r"`learning_rate`.*Received: learning_rate=-1.0"),
    ({"resume": True}, r"needs a `run_dir`"),
])
def test_bad_train_arguments_fail_before_training(mnist1d, kwargs, match):
    model = small_mlp(mnist1d)
    with pytest.raises(ValueError, match=match):
        kerasreg.train(model, mnist1d, **kwargs)
    assert not model.compiled  # never compiled, so never trained


def test_train_cli_end_to_end_with_toml_config_and_flag_override(tmp_path, capfd):
    config = tmp_path / "run.toml"
    config.write_text('placement = "dropout"\nepochs = 5\ndropout_rate = 0.3\n[options]\nwidths = [16]\n')
    args = ["train", "--config", str(config), "--epochs", "2", "--seed", "1", "--out", str(tmp_path / "out")]
    assert cli.main(args) == 0
    out, err = capfd.readouterr()
    name = "mlp-dropout-standard0.3-seed1"
    assert f"Exported {tmp_path / 'out' / name}" in out
    progress = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert len(progress) == 2 and "val_acc" in progress[0] and "clean_gap_acc" in progress[0]
    manifest = json.loads((tmp_path / "out" / name / "manifest.json").read_text())
    assert manifest["model"]["placement"] == "dropout" and manifest["model"]["dropout_rate"] == 0.3
    assert manifest["training"]["epochs"] == 2
    assert not (tmp_path / "out" / runs.WORK_DIR / name).exists()

    assert cli.main(args) == 2  # the same command again
    err = capfd.readouterr().err
    assert name in err and "overwrite" in err


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="a JAX run exports through a TensorFlow worker")
def test_the_train_command_called_from_python_keeps_its_export_worker_for_the_next_call(tmp_path):
    args = ["train", "--widths", "8", "--epochs", "1", "--quiet"]
    assert cli.main([*args, "--out", str(tmp_path / "first")]) == 0
    workers = {child.pid for child in multiprocessing.active_children()}
    assert cli.main([*args, "--out", str(tmp_path / "second")]) == 0
    assert workers and {child.pid for child in multiprocessing.active_children()} == workers


@pytest.mark.parametrize("args, message", [
    (["--placement", "bn_befor_act"], "Did you mean 'bn_before_act'"),
    (["--dropout-rate", "1.5"], "dropout_rate=1.5"),
    (["--dataset", "mnist1f"], "Did you mean 'mnist1d'"),
    (["--config", "missing.toml"], "missing.toml"),
])
def test_train_cli_rejects_bad_input_before_training(tmp_path, capsys, args, message):
    code = cli.main(["train", *args, "--out", str(tmp_path), "--quiet"])
    assert code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_unknown_toml_key_is_named(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text("placemnt = 'ic'\n")
    assert cli.main(["train", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "'placemnt'" in err and "placement" in err
