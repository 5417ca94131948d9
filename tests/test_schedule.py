"""Study scheduling: runs start longest expected first, so the last minutes are not one worker alone."""

import kerasreg
from kerasreg.runs import prepare
from kerasreg.study.schedule import longest_first, multiply_accumulates


def test_multiply_accumulates_count_each_kernel_once_per_output_position():
    mlp = kerasreg.build_model("mlp", widths=(8, 4), input_shape=(6,), num_classes=3)
    assert multiply_accumulates(mlp) == 6 * 8 + 8 * 4 + 4 * 3
    conv = kerasreg.build_model("cnn1d", filters=(2,), kernel_size=3, input_shape=(10,), num_classes=2)
    kernels = [layer for layer in conv.layers if hasattr(layer, "kernel")]
    conv_layer, head = kernels
    positions = conv_layer.output.shape[1]
    assert multiply_accumulates(conv) == 3 * 1 * 2 * positions + head.kernel.shape[0] * 2


def test_the_deep_arm_starts_first_and_within_an_arm_runs_with_dropout_first():
    study = kerasreg.StudyConfig(arms=[
        {"models": ["mlp"], "placements": ["bn_before_act", "bn_act_drop"], "seeds": [0], "epochs": 3},
        {"models": ["resnet_small"], "placements": ["bn_before_act", "drop_before_bn"], "seeds": [0],
         "epochs": 3},
    ])
    built = []
    order = longest_first(study.runs(), lambda config: built.append(config.model) or prepare(config)[1])
    assert [(c.model, c.placement) for c in order] == [
        ("resnet_small", "drop_before_bn"), ("resnet_small", "bn_before_act"),
        ("mlp", "bn_act_drop"), ("mlp", "bn_before_act")]
    assert sorted(built) == ["mlp", "resnet_small"], "one model built per architecture, not per run"
