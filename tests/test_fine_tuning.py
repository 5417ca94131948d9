"""Fine-tuning a keras.applications backbone on real digits: the guide's recipe passes, planted BatchNorm problems are
found by `audit_batch_norm` and by `kerasreg diagnose`, and re-estimation recovers what stale statistics cost.

The backbone is MobileNetV2 (alpha 0.35, `weights=None`) cut after its third block (9 BatchNormalization layers), so
that four short fits stay within seconds; scikit-learn's 8x8 digits are upscaled to 32x32x3.
"""

import json
import math

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

import kerasreg
from kerasreg import cli
from kerasreg.diagnosis.fine_tuning import training_false_holds
from kerasreg.training import copy_model

pytestmark = pytest.mark.usefixtures("quick_compile")


def _accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, batch_size=256, verbose=0), axis=-1) == y))


def _backbone():
    full = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, include_top=False)
    return keras.Model(full.input, full.get_layer("block_2_add").output, name="backbone")


def _classifier(base, **call):
    inputs = keras.Input((32, 32, 3))
    features = keras.layers.GlobalAveragePooling2D()(base(inputs, **call))
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(features))


def _fit(model, data, *, learning_rate, batch_size, rows=None):
    x, y = data.as_numpy("train")
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")
    model.fit(x[:rows], y[:rows], epochs=1, batch_size=batch_size, verbose=0)
    return model


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """scikit-learn's digits as 32x32x3 images, imported as a kerasreg dataset (`digits32`) in a data dir of its own."""
    folder = tmp_path_factory.mktemp("digits32")
    images = load_digits()
    x = np.kron(images.images[..., None] / 16.0, np.ones((1, 4, 4, 3))).astype("float32")
    np.savez(folder / "digits32.npz", x=x, y=images.target)
    assert cli.main(["data", "import", "digits32", str(folder / "digits32.npz"), "--data-dir", str(folder)]) == 0
    return kerasreg.load_dataset("digits32", data_dir=folder), folder


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    """(iii) trained from scratch for one epoch (a few dozen steps) at momentum 0.99; (i) the guide's recipe and (ii) training
    mode at batch 8, both on (iii)'s backbone with its statistics re-estimated (a pretrained backbone's)."""
    data, _ = digits
    keras.utils.set_random_seed(0)
    stale = _fit(_classifier(kerasreg.set_batch_norm(_backbone(), momentum=0.99)), data, learning_rate=3e-3,
                 batch_size=32)
    pretrained = kerasreg.reestimate_batch_norm(stale, data).layers[1]

    base = copy_model(pretrained)
    base.trainable = False
    guide = _fit(_classifier(base, training=False), data, learning_rate=1e-3, batch_size=32)
    base.trainable = True
    guide = _fit(guide, data, learning_rate=1e-5, batch_size=32)

    small = _fit(_classifier(copy_model(pretrained)), data, learning_rate=1e-4, batch_size=8, rows=320)
    folder = tmp_path_factory.mktemp("models")
    for name, model in (("stale", stale), ("guide", guide), ("small", small)):
        model.save(folder / f"{name}.keras")
    return {"stale": stale, "guide": guide, "small": small}, folder


def test_the_graph_alone_tells_how_each_backbone_call_runs_its_batch_norm():
    frozen = _backbone()
    frozen.trainable = False
    findings = kerasreg.audit_batch_norm(_classifier(frozen))
    (call,) = [f for f in findings if f.kind == "fine-tuning"]
    assert call.problem and call.layer == "backbone" and "frozen and called without training=False" in call.text
    guide = kerasreg.audit_batch_norm(_classifier(frozen, training=False))  # the guide's first step
    assert [f.kind for f in guide if f.kind == "fine-tuning"] == [] and [f for f in guide if f.kind == "frozen"]
    unfrozen = [f for f in kerasreg.audit_batch_norm(_classifier(_backbone(), training=False), batch_size=8)
                if f.kind == "fine-tuning"]
    if training_false_holds():
        assert unfrozen == []
    else:
        assert unfrozen[0].problem and "with training=False, but Keras" in unfrozen[0].text
    assert [f.kind for f in kerasreg.audit_batch_norm(_classifier(_backbone()), batch_size=32)
            if f.kind == "fine-tuning"] == []


def _problems(findings):
    return [f for f in findings if f.problem]


def test_the_guides_recipe_has_nothing_to_report(digits, trained):
    data, _ = digits
    findings = kerasreg.audit_batch_norm(trained[0]["guide"], data, batch_size=32)
    assert _problems(findings) == []
    notes = {f.kind: f for f in findings}
    assert not notes["momentum"].problem and "match the training data" in notes["momentum"].fix
    if not training_false_holds():
        assert "replaces it with training=True" in notes["fine-tuning"].text


def test_a_backbone_fine_tuned_in_training_mode_at_batch_8_is_flagged(digits, trained):
    data, _ = digits
    findings = {f.kind: f for f in _problems(kerasreg.audit_batch_norm(trained[0]["small"], data, batch_size=8))}
    assert findings["fine-tuning"].layer == "backbone"
    assert "called without training=False, so at batch 8" in findings["fine-tuning"].text
    assert "layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)" in findings["fine-tuning"].fix
    assert "GroupNorm" in findings["fine-tuning"].fix


def test_momentum_099_after_one_epoch_is_flagged_and_reestimation_recovers_the_accuracy(digits, trained):
    data, _ = digits
    model = trained[0]["stale"]
    findings = _problems(kerasreg.audit_batch_norm(model, data, batch_size=32))
    kinds = [f.kind for f in findings]
    assert "momentum" in kinds and "stale statistics" in kinds
    (momentum,) = [f for f in findings if f.kind == "momentum"]
    steps = math.ceil(data.sizes["train"] / 32)  # one epoch
    assert f"about 100 steps (momentum 0.99), more than the {steps} steps trained: {0.99 ** steps:.0%}" in momentum.text
    x_val, y_val = data.as_numpy("val")
    before = _accuracy(model, x_val, y_val)
    fixed = kerasreg.reestimate_batch_norm(model, data)
    after = _accuracy(fixed, x_val, y_val)
    assert fixed is not model and _accuracy(model, x_val, y_val) == before  # the user's model is untouched
    print(f"\nvalidation accuracy after {steps} steps at momentum 0.99: {before:.1%}; BN re-estimated: {after:.1%}")
    assert after > before + 0.2


@pytest.mark.parametrize("name, expected", [("guide", None), ("small", "fine-tuning"), ("stale", "momentum")])
def test_diagnose_names_each_planted_problem_and_nothing_on_the_guides_recipe(digits, trained, name, expected,
                                                                               capsys, tmp_path):
    _, data_dir = digits
    batch = "8" if name == "small" else "32"
    argv = ["diagnose", str(trained[1] / f"{name}.keras"), "--dataset", "digits32", "--data-dir", str(data_dir),
            "--batch-size", batch, "--out", str(tmp_path / "report")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    audit = out.split("BatchNorm audit:\n", 1)[1]
    report = (tmp_path / "report" / "diagnose.json").read_text()
    problems = [f for f in json.loads(report)["batch_norm"] if f["problem"]]
    if expected is None:
        assert problems == [] and audit.startswith("- The BatchNorm audit found no problem in 9 BatchNormalization")
    else:
        assert expected in [f["kind"] for f in problems]
        assert any(f["text"] in audit for f in problems if f["kind"] == expected)
    assert "## BatchNorm audit" in (tmp_path / "report" / "diagnose.md").read_text()
