"""Shared test helpers (plain functions, importable as `from helpers import ...`).

`run_python` runs code in a fresh process; `watch_atomic_writes` stops
`kerasreg._files.write_atomic` at each step of a write; the rest builds small
zoo models and reads a built model's block structure from its layers.
"""

import builtins
import dataclasses
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest


_EXEC_WITH_DEFAULT_SIGINT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                             "os.execv(sys.argv[1], sys.argv[1:])")


def with_default_sigint(command):
    """`command`, started so that it has the default Ctrl-C handling whatever the suite was started with.

    A suite started by `nohup`, `cmd &` or many CI runners has SIGINT ignored, and a
    child inherits that: its Python then never raises KeyboardInterrupt. A small
    Python resets it and execs `command` (a `preexec_fn` would run Python in a
    forked copy of a multithreaded JAX process).

    Example:

    >>> with_default_sigint(["kerasreg", "train"])[-2:]
    ['kerasreg', 'train']
    """
    return [sys.executable, "-c", _EXEC_WITH_DEFAULT_SIGINT, *map(str, command)]


def run_python(code, *args, timeout=120, env=None, check=True):
    """Run `code` with `python -c` in a fresh process and return the CompletedProcess.

    The child starts with no state of the test process: nothing imported and
    nothing registered, which is what a user loading a saved model has.
    `KERAS_BACKEND` is that of the test session unless `env` says otherwise. With
    `check=True` a non-zero exit fails the test and shows the child's
    stdout and stderr.

    Args:
        code: str. Python source to run.
        *args: str. Command-line arguments, available as `sys.argv[1:]`.
        timeout: float. Seconds before the child is killed. Defaults to `120`.
        env: dict or None. Variables added to (or overriding) the environment.
        check: bool. Fail the test on a non-zero exit code. Defaults to `True`.

    Example:

    >>> run_python("import sys; print(sys.argv[1])", "hi").stdout  # doctest: +SKIP
    'hi\\n'
    """
    child_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    child_env.update(env or {})
    result = subprocess.run(
        with_default_sigint([sys.executable, "-c", code, *args]),
        capture_output=True, text=True, timeout=timeout, env=child_env,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"Fresh Python process exited with code {result.returncode}.\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}",
            pytrace=False,
        )
    return result


def data_dir_entries(data_dir):
    """The entries of a data directory, sorted, with the ids of imported datasets' version folders masked.

    Example:

    >>> data_dir_entries("data")  # doctest: +SKIP
    ['.wine.lock', '.wine.version-*', 'wine']
    """
    return sorted(re.sub(r"\.version-[0-9a-f]+$", ".version-*", entry) for entry in os.listdir(data_dir))


# The real functions, so that patching twice in one test replaces the watch instead of stacking two.
_OPEN, _REPLACE = builtins.open, os.replace
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.tmp-\d+")
# Each step of an atomic write, in order, at which `watch_atomic_writes` calls its action.
WRITE_STEPS = ("begin", "partial", "written", "synced", "replaced")


def _target(path):
    """The file a write to `path` is for: the sibling a temporary file will be renamed onto, else `path`."""
    path = pathlib.Path(path)
    match = _TEMPORARY.fullmatch(path.name)
    return path.with_name(match["name"]) if match else path


class _HalvedFile:
    """A file whose every `write` lands in two flushed halves, with `report` called after each."""

    def __init__(self, file, report):
        self._file, self._report = file, report

    def write(self, data):
        half = len(data) // 2
        for part, step in ((data[:half], "partial"), (data[half:], "written")):
            self._file.write(part)
            self._file.flush()
            self._report(step)
        return len(data)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return self._file.__exit__(*exc_info)


def watch_atomic_writes(monkeypatch, action):
    """Call `action(step, target)` at each of `WRITE_STEPS` of every `write_atomic`, through the calls it makes.

    `action` may raise (the write fails there) or copy files (what a kill there
    would leave on disk). The steps are observed from the outside (opening the
    file, its writes, the rename), so a writer that wrote in place would leave
    a half-written target at "partial" and never reach "synced".

    Example:

    >>> watch_atomic_writes(monkeypatch, lambda step, target: print(step, target.name))  # doctest: +SKIP
    """
    from kerasreg import _files

    def opener(path, *args, **kwargs):
        target = _target(path)
        action("begin", target)
        return _HalvedFile(_OPEN(path, *args, **kwargs), lambda step: action(step, target))

    def replace(src, dst, *args, **kwargs):
        watched = _TEMPORARY.fullmatch(pathlib.Path(src).name) is not None
        if watched:
            action("synced", _target(src))
        _REPLACE(src, dst, *args, **kwargs)
        if watched:
            action("replaced", _target(src))

    monkeypatch.setattr(_files, "open", opener, raising=False)
    monkeypatch.setattr(os, "replace", replace)


@dataclasses.dataclass(frozen=True)
class ModelCase:
    """A small, fast configuration of one zoo architecture for structure tests.

    `blocks` is how many placement blocks the configuration has; `sequential`
    is False for architectures that cannot be Sequential (residual ones).
    """

    input_shape: tuple
    kwargs: dict
    blocks: int
    sequential: bool = True


MODEL_CASES = {
    "mlp": ModelCase((10,), {"widths": (8, 8)}, blocks=2),
    "tutorial_net": ModelCase((10,), {}, blocks=1),
    "cnn1d": ModelCase((16,), {"filters": (4, 8), "kernel_size": 3}, blocks=2),
    "cnn2d": ModelCase((8, 8, 1), {"filters": (4, 8)}, blocks=2),
    "resnet_small": ModelCase((16,), {"filters": 4}, blocks=5, sequential=False),
    # Three stages of one unit: 8x8 -> 4x4 -> 2x2, a projection that widens and one that only strides.
    "resnet_cifar": ModelCase((8, 8, 1), {"filters": (4, 8, 8), "blocks_per_stage": 1}, blocks=7, sequential=False),
}
CONV_MODELS = ("cnn1d", "cnn2d", "resnet_cifar", "resnet_small")
APIS = ("functional", "sequential")


def model_case(name):
    """The small configuration of `name`; a new zoo entry must add one here."""
    if name not in MODEL_CASES:
        pytest.fail(f"Model {name!r} is registered but has no small test case in tests/helpers.py MODEL_CASES.")
    return MODEL_CASES[name]


def build_small(name, *, num_classes=3, **kwargs):
    """`build_model` with the small configuration of `name` (kwargs override)."""
    import kerasreg

    case = model_case(name)
    kwargs = {"input_shape": case.input_shape, **case.kwargs, **kwargs}
    return kerasreg.build_model(name, num_classes=num_classes, **kwargs)


def small_inputs(name, batch=4, seed=0):
    """Random float32 inputs for the small configuration of `name`."""
    shape = (batch, *model_case(name).input_shape)
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def api_cases(models, placements):
    """(model, placement, api) triples, leaving out Sequential builds of residual nets."""
    return [
        (m, p, api)
        for m in models
        for p in placements
        for api in APIS
        if api == "functional" or model_case(m).sequential
    ]


def layer_token(layer):
    """The placement token of a layer, judged by its class only (None for glue layers)."""
    import keras

    from kerasreg import Uout

    token_classes = {
        "weight": (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D),
        "norm": (keras.layers.BatchNormalization, keras.layers.LayerNormalization,
                 keras.layers.GroupNormalization),
        "act": (keras.layers.Activation, keras.layers.ReLU, keras.layers.ELU,
                keras.layers.LeakyReLU, keras.layers.PReLU, keras.layers.Softmax),
        # SpatialDropout1D/2D/3D subclass Dropout.
        "drop": (keras.layers.Dropout, keras.layers.GaussianDropout, keras.layers.AlphaDropout, Uout),
    }
    for token, classes in token_classes.items():
        if isinstance(layer, classes):
            return token
    return None


def block_tokens(model):
    """[(block, tokens)] in layer order: token layers grouped by the block prefix of their names.

    Tokens come from the layer classes (`layer_token`), never from kerasreg's
    own config; the name prefix (`block1` of `block1_norm`, `head` of
    `head_drop`) only says which block a layer belongs to.
    """
    groups = []
    for layer in model.layers:
        token = layer_token(layer)
        # A residual's projection shortcut (`<residual>_shortcut`) is a weight outside every placement block.
        if token is None or layer.name.endswith("_shortcut"):
            continue
        prefix = layer.name.rsplit("_", 1)[0]
        if groups and groups[-1][0] == prefix:
            groups[-1][1].append(token)
        else:
            groups.append((prefix, [token]))
    prefixes = [p for p, _ in groups]
    assert len(prefixes) == len(set(prefixes)), f"Layers of a block are not contiguous: {prefixes}"
    return [(p, tuple(tokens)) for p, tokens in groups]


def assert_placement_order(model, placement, n_blocks, *, drop=True, norm=True):
    """Assert the model's blocks follow `placement` (minus tokens that add no layer)."""
    expected = tuple(
        t for t in placement.block if (drop or t != "drop") and (norm or t != "norm")
    )
    *body, (head_name, head) = block_tokens(model)
    assert head_name == "head"
    assert [tokens for _, tokens in body] == [expected] * n_blocks, block_tokens(model)
    tokens = [layer_token(layer) for layer in model.layers]
    if placement.dropout_scope == "head_only" and drop:
        assert head == ("drop", "weight")
        assert tokens.count("drop") == 1
        assert tokens[-2:] == ["drop", "weight"], "head-only dropout must sit right before the head"
    else:
        assert head == ("weight",)
        assert tokens.count("drop") == (n_blocks * ("drop" in expected))


def randomize_batch_norm(model, seed=0):
    """Give every top-level BatchNormalization layer statistics and scales far from the identity, so folding
    mistakes show."""
    import keras  # here, as the other helpers import kerasreg: importing this module stays cheap

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 2.0, n))
            layer.beta.assign(rng.normal(size=n))
            layer.moving_mean.assign(rng.normal(size=n))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, n))
