"""`kerasreg.diagnose` and `kerasreg diagnose` on models kerasreg did not build, and on its own exports."""

import json
import zipfile

import keras
import numpy as np
import pytest

import kerasreg
from kerasreg import cli
from kerasreg.analysis import published
from kerasreg.diagnosis.inputs import load_model_file

# Runs of an epoch or two, here and in the processes started: compiling is most of their time (conftest.py).
pytestmark = pytest.mark.usefixtures("quick_compile")

L = keras.layers


def _plain_mlp(*middle, outputs=10, name="plain"):
    model = keras.Sequential([keras.Input((40,)), *middle, L.Dense(outputs, activation="softmax", name="head")],
                             name=name)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def data():
    return kerasreg.load_dataset("mnist1d")


@pytest.fixture(scope="module")
def fitted(data):
    """A plain Keras MLP with dropout -> activation -> BN, trained with model.fit."""
    keras.utils.set_random_seed(0)
    model = _plain_mlp(L.Dense(32, name="dense"), L.Dropout(0.5, name="drop"), L.ReLU(name="relu"),
                       L.BatchNormalization(name="bn"))
    model.fit(*data.as_numpy("train"), epochs=3, batch_size=100, verbose=0)
    return model


@pytest.fixture(scope="module")
def diagnosis(fitted, data):
    return kerasreg.diagnose(fitted, data, mc_samples=3)


def test_the_path_shift_and_reestimation_are_measured_and_said(diagnosis, fitted, data):
    assert [p.text() for p in diagnosis.structure.paths] == ["drop -> relu -> bn"]
    assert set(diagnosis.variance_shift) == {"bn"}
    # Dropout at 0.5 before BN: the moving variance is inflated, so the inference variance is smaller.
    assert diagnosis.variance_shift["bn"] < 0.9
    evaluated = fitted.evaluate(*data.as_numpy("val"), verbose=0, return_dict=True)
    assert diagnosis.clean["val_accuracy"] == pytest.approx(evaluated["accuracy"], abs=1e-6)
    assert diagnosis.clean["val_loss"] == pytest.approx(evaluated["loss"], rel=1e-4)
    fixed = kerasreg.reestimate_batch_norm(fitted, data)
    accuracy = np.mean(np.argmax(fixed.predict(data.as_numpy("val")[0], verbose=0), -1) == data.as_numpy("val")[1])
    assert diagnosis.reestimation["val_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    first = diagnosis.verdict[0]
    assert first.startswith("Dropout feeds BatchNorm on 1 path (drop -> relu -> bn)")
    assert any("move dropout after the last BatchNorm" in s for s in diagnosis.verdict)
    assert any(f"{diagnosis.variance_shift['bn']:.3g} at bn" in s for s in diagnosis.verdict)
    assert diagnosis.mc_dropout["samples"] == 3 and diagnosis.mc_dropout["mean_std"] > 0


def test_the_verdict_quotes_the_published_study_and_only_what_its_reruns_agree_on(diagnosis):
    advice = next(s for s in diagnosis.verdict if "move dropout after the last BatchNorm" in s)
    summary = published.load()
    costs = [c for c in next(a for a in summary["main"]["arms"] if a["name"] == "deep")["contrasts"]
             if c["other"] in summary["agreed"]["deep"] and c["decision"] == "separated"]
    assert costs, "the published quick study separates dropout feeding BatchNorm on every rerun"
    points = sorted(-c["difference_points"] for c in costs)
    placement = diagnosis.structure.paths[0].placement
    quoted = [c for c in costs if c["other"].split(" / ")[0] == placement]
    expected = (f"`{placement}` cost {-quoted[0]['difference_points']:.1f} points" if quoted
                else f"cost {points[0]:.1f}-{points[-1]:.1f} points")
    assert expected in advice and "replicated on other seeds and on TensorFlow" in advice, advice


def test_the_reported_gap_is_the_training_mode_pass_and_the_clean_gap_the_inference_one(diagnosis, fitted, data):
    _, y = data.as_numpy("train")
    rows = diagnosis.reported["train_reported_rows"]
    assert rows == diagnosis.clean["train_clean_rows"] // 32 * 32 and rows < len(y)  # the clean gap's rows
    g = diagnosis.gaps
    assert g["clean_gap_accuracy"] == pytest.approx(
        diagnosis.clean["train_clean_accuracy"] - diagnosis.clean["val_accuracy"])
    assert g["reported_gap_accuracy"] == pytest.approx(
        diagnosis.reported["train_reported_accuracy"] - diagnosis.clean["val_accuracy"])
    # Dropout on in the training-mode pass: the training numbers fall below the inference-mode ones.
    assert diagnosis.reported["train_reported_accuracy"] < diagnosis.clean["train_clean_accuracy"]


def test_the_users_model_is_left_untouched(fitted, data):
    before = [keras.ops.convert_to_numpy(v) for v in fitted.variables]
    kerasreg.diagnose(fitted, data)
    assert all(np.array_equal(a, keras.ops.convert_to_numpy(b)) for a, b in zip(before, fitted.variables))


def test_a_model_without_dropout_or_bn_gets_a_message_and_its_gaps(data):
    no_dropout = _plain_mlp(L.Dense(16), L.BatchNormalization(), L.ReLU())
    result = kerasreg.diagnose(no_dropout, data)
    assert "no dropout-kind layer" in result.verdict[0]
    assert any("Nothing to report" in s for s in result.verdict)
    no_bn = _plain_mlp(L.Dense(16, activation="relu"), L.Dropout(0.2))
    result = kerasreg.diagnose(no_bn, data)
    assert result.verdict[0].startswith("The model has no BatchNormalization layer")
    assert result.reestimation is None and result.variance_shift == {}


def test_a_regression_head_is_measured_on_the_loss_only(data):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 40)).astype("float32")
    y = x[:, :1] * 2.0
    model = keras.Sequential([keras.Input((40,)), L.Dense(8), L.Dropout(0.3), L.BatchNormalization(), L.Dense(1)])
    result = kerasreg.diagnose(model, ((x[:200], y[:200]), (x[200:], y[200:])))
    assert result.task == "regression"
    assert any("regression head" in s and "loss only" in s for s in result.verdict)
    as_json = result.to_dict()
    assert as_json["gaps"]["clean_gap_accuracy"] is None and as_json["gaps"]["clean_gap_loss"] is not None


@pytest.mark.parametrize("model, message", [
    (lambda: _plain_mlp(L.Dense(8), outputs=3), r"Expected a dataset with 3 classes.*mnist1d.*10 classes"),
    (lambda: keras.Sequential([keras.Input((20,)), L.Dense(10, activation="softmax")]),
     r"Expected inputs of shape \(20,\).*Received: inputs of shape \(40,\)"),
    (lambda: keras.Model([a := keras.Input((40,)), b := keras.Input((40,))], L.Dense(10)(L.Add()([a, b]))),
     r"Expected a model with one input and one output.*2 inputs"),
])
def test_a_model_that_does_not_fit_the_data_is_refused(model, message, data):
    with pytest.raises(ValueError, match=message):
        kerasreg.diagnose(model(), data)


def test_a_kerasreg_export_gives_the_manifests_numbers(tmp_path):
    config = kerasreg.RunConfig(placement="drop_before_bn", dropout_rate=0.5, epochs=2,
                                options={"widths": (16, 16)})
    path = kerasreg.run(config, out=tmp_path, verbose=0)
    metrics = json.loads((path / "manifest.json").read_text())["metrics"]
    model, manifest = load_model_file(path)
    result = kerasreg.diagnose(model, manifest["dataset"]["name"], test=True, manifest=manifest)
    assert result.variance_shift_max == pytest.approx(metrics["variance_shift_max"], rel=1e-5)
    assert result.reestimation["variance_shift_max"] == pytest.approx(metrics["variance_shift_reestimated"], rel=1e-5)
    assert result.reestimation["test_accuracy"] == pytest.approx(metrics["test_accuracy_reestimated"], abs=1e-9)
    assert result.clean["test_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-9)
    assert result.structure.placement == "drop_before_bn"


def test_the_cli_prints_the_verdict_and_writes_the_three_files(fitted, tmp_path, capfd):
    fitted.save(tmp_path / "plain.keras")
    out = tmp_path / "report"
    assert cli.main(["diagnose", str(tmp_path / "plain.keras"), "--dataset", "mnist1d", "--out", str(out)]) == 0
    printed = capfd.readouterr().out
    assert "Dropout feeds BatchNorm on 1 path (drop -> relu -> bn)" in printed
    assert "variance shift" in printed
    report = json.loads((out / "diagnose.json").read_text())
    assert report["schema"] == "kerasreg.diagnose/1"
    assert report["structure"]["paths"] == [{"layers": ["drop", "relu", "bn"], "kind": "Dropout", "placement": None}]
    assert set(report) >= {"metrics", "gaps", "variance_shift", "reestimation", "verdict", "task"}
    assert "data:image/png;base64," in (out / "diagnose.html").read_text()
    assert "| bn |" in (out / "diagnose.md").read_text()


def test_the_cli_never_overwrites_a_report_and_explains_a_lambda_layer(fitted, tmp_path, capsys):
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "diagnose.json").write_text("{}")
    fitted.save(tmp_path / "plain.keras")
    assert cli.main(["diagnose", str(tmp_path / "plain.keras"), "--dataset", "mnist1d",
                     "--out", str(tmp_path / "report")]) == 2
    assert "already holds a diagnosis" in capsys.readouterr().err
    assert (tmp_path / "report" / "diagnose.json").read_text() == "{}"

    lambda_model = keras.Sequential([keras.Input((40,)), L.Lambda(lambda t: t * 2.0), L.Dense(10)])
    lambda_model.save(tmp_path / "lambda.keras")
    assert cli.main(["diagnose", str(tmp_path / "lambda.keras"), "--dataset", "mnist1d"]) == 2
    err = capsys.readouterr().err
    assert "contains a Lambda layer" in err and "safe_mode=False" in err and "--unsafe-load" in err


def _rewrite_keras_file(source, target, member, change):
    """Copy the `.keras` zip `source` to `target` with `change(bytes) -> bytes` applied to one member."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = old.read(item)
            new.writestr(item, change(data) if item.filename == member else data)


def test_the_cli_refuses_an_output_path_that_is_a_file_before_measuring(fitted, tmp_path, capsys, monkeypatch):
    fitted.save(tmp_path / "plain.keras")
    (tmp_path / "taken").write_text("not a folder")
    monkeypatch.setattr(kerasreg, "diagnose", lambda *a, **k: pytest.fail("measured before checking --out"))
    assert cli.main(["diagnose", str(tmp_path / "plain.keras"), "--dataset", "mnist1d",
                     "--out", str(tmp_path / "taken" / "report")]) == 2
    assert f"cannot write {tmp_path / 'taken'}: Not a directory" in capsys.readouterr().err


def test_the_cli_names_a_keras_file_with_corrupted_weights_or_an_unknown_class(fitted, tmp_path, capsys):
    fitted.save(tmp_path / "plain.keras")
    _rewrite_keras_file(tmp_path / "plain.keras", tmp_path / "weights.keras", "model.weights.h5",
                        lambda data: data[:64] + b"\0" * (len(data) - 64))
    unknown = lambda data: data.replace(b'"BatchNormalization"', b'"NoSuchNormalization"')  # noqa: E731
    _rewrite_keras_file(tmp_path / "plain.keras", tmp_path / "unknown.keras", "config.json", unknown)
    for name in ("weights.keras", "unknown.keras"):
        assert cli.main(["diagnose", str(tmp_path / name), "--dataset", "mnist1d"]) == 2
        err = capsys.readouterr().err
        assert f"Could not load {str(tmp_path / name)!r}" in err and "unexpected error" not in err, err


def test_the_batch_norm_audit_in_a_diagnosis_is_the_audit_on_the_train_split(fitted, data):
    # Moving statistics one standard deviation off: the precise ones diagnose shares with the audit are re-estimated.
    planted = kerasreg.reestimate_batch_norm(fitted, data)
    bn = planted.get_layer("bn")
    bn.moving_mean.assign(bn.moving_mean + np.sqrt(bn.moving_variance))
    def stale(findings):
        return [f for f in findings if f.kind == "stale statistics"]

    found = stale(kerasreg.diagnose(planted, data).batch_norm)
    assert found == stale(kerasreg.audit_batch_norm(planted, data.as_numpy("train"), batch_size=32))
    assert [f.layer for f in found] == ["bn"] and "1.00 standard deviations" in found[0].text


def test_the_batch_size_check_runs_on_the_reported_gaps_rows_and_shares_its_pass(diagnosis):
    (check,) = [f for f in diagnosis.batch_norm if f.kind == "batch size"]
    rows, accuracy = diagnosis.clean["train_clean_rows"], diagnosis.reported["train_reported_accuracy"]
    # At the user's batch (32 here) the check's accuracy is the reported gap's training-mode accuracy.
    assert f"on {rows} training rows" in check.text and f"{accuracy:.1%} at 32" in check.text, check.text


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX's compilation cache")
def test_a_diagnosis_compiles_through_the_cache_and_restores_the_users_settings(fitted, data, tmp_path, monkeypatch):
    import jax

    monkeypatch.setenv("KERASREG_CACHE_DIR", str(tmp_path))
    names = ("jax_threefry_partitionable", "jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    settings = {name: getattr(jax.config, name) for name in names}
    kerasreg.diagnose(fitted, data)
    assert {name: getattr(jax.config, name) for name in names} == settings
    # A second diagnosis of the architecture loads these instead of compiling: its `fit` epoch's step among them.
    assert list(tmp_path.glob("jax/*/jit_train_step-*-cache")), sorted(p.name for p in tmp_path.rglob("*"))[:20]
