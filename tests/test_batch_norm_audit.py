"""The BatchNorm audit without data: planted problems in real backbones are named with their layer and fix."""

import keras
import numpy as np
import pytest

import kerasreg
from kerasreg import cli
from kerasreg.training import copy_model


def _mobilenet():
    return keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), classes=10)


def test_an_untrained_backbone_is_found_with_statistics_never_updated_and_its_momentum_horizon():
    model = _mobilenet()
    findings = kerasreg.audit_batch_norm(model)
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    never = [f for f in findings if f.kind == "never updated"]
    assert [f.layer for f in never] == [layer.name for layer in layers]
    assert "reestimate_batch_norm" in never[0].fix
    (momentum,) = [f for f in findings if f.kind == "momentum"]
    assert f"{len(layers)} BatchNormalization layers" in momentum.text and "about 1000 steps (momentum 0.999)" in \
        momentum.text


def test_a_trained_model_has_no_stale_statistics_and_planted_problems_are_named(tmp_path):
    data = kerasreg.load_dataset("mnist1d")
    model = kerasreg.build_model("mlp", placement="bn_before_act", input_shape=data.input_shape,
                                 num_classes=data.num_classes, seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(*data.as_numpy("train"), epochs=1, batch_size=100, verbose=0)
    assert [f.kind for f in kerasreg.audit_batch_norm(model)] == ["momentum"]
    first, second = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    gamma = np.array(first.gamma.numpy())
    gamma[:3] = 0.0
    first.gamma.assign(gamma)
    variance = np.array(second.moving_variance.numpy())
    variance[0] = 1e-9
    second.moving_variance.assign(variance)
    second.trainable = False
    path = tmp_path / "planted.keras"
    model.save(path)  # the audit reads a saved model as well: nothing but the weights is needed
    findings = {f.kind: f for f in kerasreg.audit_batch_norm(keras.models.load_model(path, compile=False))}
    assert findings["dead channels"].layer == first.name
    assert f"3 channels of {gamma.size} with a scale below 0.001" in findings["dead channels"].text
    assert findings["extreme variance"].layer == second.name and "from 1e-09" in findings["extreme variance"].text
    assert findings["frozen"].layer == second.name and not findings["frozen"].problem
    assert "inference mode even inside fit" in findings["frozen"].text
    assert findings["frozen"].sentence().endswith(".")


def test_a_model_without_batchnorm_has_nothing_to_audit_and_a_non_model_is_refused():
    model = kerasreg.build_model("mlp", placement="dropout", input_shape=(40,), num_classes=10)
    assert kerasreg.audit_batch_norm(model) == []
    with pytest.raises(ValueError, match=r"`model`.*a keras.Model.*Received: str"):
        kerasreg.audit_batch_norm("model.keras")


def test_diagnose_without_data_prints_the_structure_the_audit_and_what_needs_data(tmp_path, capsys):
    path = tmp_path / "backbone.keras"
    _mobilenet().save(path)
    assert cli.main(["diagnose", str(path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("- The model has 52 BatchNormalization layers and no dropout-kind layer")
    assert lines[1].startswith("- 52 BatchNormalization layers (bn_Conv1, ") and "never updated" in lines[1]
    assert lines[-1].startswith("- Without data the audit cannot tell") and lines[-1].endswith("pass --dataset.")
    assert cli.main(["diagnose", str(path), "--out", str(tmp_path / "report")]) == 2
    assert "--out writes the measured report, which needs data" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


@pytest.fixture(scope="module")
def mnist1d_mlp():
    """An MLP trained to its moving statistics' horizon on MNIST-1D: 3 epochs of 36 steps at momentum 0.9."""
    data = kerasreg.load_dataset("mnist1d")
    keras.utils.set_random_seed(0)
    model = kerasreg.set_batch_norm(kerasreg.build_model("mlp", placement="bn_before_act", input_shape=(40,),
                                                         num_classes=10, seed=0), momentum=0.9)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(*data.as_numpy("train"), epochs=3, batch_size=100, verbose=0)
    return model, data


def test_moving_statistics_off_the_precise_ones_are_found_per_layer_on_data_and_the_model_is_untouched(mnist1d_mlp):
    model, data = mnist1d_mlp
    assert [f for f in kerasreg.audit_batch_norm(model, data, batch_size=100) if f.problem] == []
    _, second = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    planted = copy_model(model)
    layer = planted.get_layer(second.name)
    layer.moving_mean.assign(layer.moving_mean + np.sqrt(layer.moving_variance))  # one standard deviation off
    before = [w.copy() for w in planted.get_weights()]
    x, y = data.as_numpy("train")
    (stale,) = [f for f in kerasreg.audit_batch_norm(planted, (x, y)) if f.kind == "stale statistics"]
    assert stale.layer == second.name and stale.problem and "reestimate_batch_norm" in stale.fix
    assert "1.00 standard deviations from the precise statistics" in stale.text
    assert all(np.array_equal(a, b) for a, b in zip(before, planted.get_weights()))


def test_a_model_whose_accuracy_drops_at_the_users_small_batch_is_told_to_use_a_larger_one_or_group_norm(mnist1d_mlp):
    model, data = mnist1d_mlp
    (note,) = [f for f in kerasreg.audit_batch_norm(model, data, batch_size=100) if f.kind == "batch size"]
    assert not note.problem and "hold at 100 rows per batch; at 8 they would cost" in note.fix
    (batch,) = [f for f in kerasreg.audit_batch_norm(model, data, batch_size=8) if f.kind == "batch size"]
    assert batch.problem and "GroupNorm" in batch.fix and "batch statistics of 8 rows cost" in batch.text
    assert batch.layer == "block1_norm" and "the noisiest batch statistics are block1_norm's (8 values per channel)" in batch.text
    with pytest.raises(ValueError, match=r"`data`. Expected training inputs of shape \(40,\).*Received: inputs of "
                                         r"shape \(3,\)"):
        kerasreg.audit_batch_norm(model, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"`steps_trained`. Expected a positive int. Received: steps_trained=0"):
        kerasreg.audit_batch_norm(model, steps_trained=0)


def test_a_momentum_horizon_longer_than_the_steps_trained_is_a_problem_and_the_steps_come_from_the_saved_optimizer(
        tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(name="bn"), keras.layers.Dense(2)])
    (note,) = [f for f in kerasreg.audit_batch_norm(model) if f.kind == "momentum"]
    assert not note.problem
    (short,) = [f for f in kerasreg.audit_batch_norm(model, steps_trained=50) if f.kind == "momentum"]
    assert short.problem and "about 100 steps (momentum 0.99), more than the 50 steps trained: 61%" in short.text
    assert "set_batch_norm(model, momentum=0.9)" in short.fix
    assert [f for f in kerasreg.audit_batch_norm(model, steps_trained=500) if f.kind == "momentum"] == []
    model.compile("sgd", "mse")
    model.fit(np.ones((70, 4)), np.ones((70, 2)), batch_size=10, epochs=1, verbose=0)  # 7 steps
    model.save(tmp_path / "m.keras")
    (saved,) = [f for f in kerasreg.audit_batch_norm(keras.models.load_model(tmp_path / "m.keras"))
                if f.kind == "momentum"]
    assert saved.problem and "more than the 7 steps trained" in saved.text


@pytest.mark.parametrize("rows, problem", [(64, False), (4000, True)])
def test_a_batch_size_drop_within_the_noise_of_the_rows_is_a_note(mnist1d_mlp, rows, problem):
    from kerasreg.diagnosis.batch_norm_data import batch_size_accuracy

    model, _ = mnist1d_mlp
    x, y = np.zeros((rows, 40), "float32"), np.zeros(rows, "int64")
    # 8 points fewer at 32: two standard errors of the difference are 17.6 points on 64 rows, 2.2 on 4,000.
    accuracies, finding = batch_size_accuracy(model, x, y, batch_size=32, accuracy_at={8: 0.5, 32: 0.42}.get)
    assert accuracies == {8: 0.5, 32: 0.42} and finding.problem is problem
    if not problem:
        assert f"8.0 points fewer at 32 rows per batch is within the noise of {rows} rows" in finding.fix, finding.fix
