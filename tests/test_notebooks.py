"""The notebooks execute top to bottom and show what they promise.

Each notebook runs in a fresh kernel of *this* interpreter (a kernelspec
written to a temporary folder, so a user-level or system `python3`
kernelspec that points at another Python is never picked up), with its
working directory, `TMPDIR` and `IPYTHONDIR` inside pytest's temporary
folder: nothing the notebooks write lands in the repository or in `/tmp`.
The committed notebooks carry no outputs; that is checked too.
"""

import json
import os
import pathlib
import re
import sys
import time

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402  (installed with nbclient)
from jupyter_client.manager import AsyncKernelManager  # noqa: E402

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
KERNEL_NAME = "python3"
PROBE = "import sys\nprint('KERNEL_PYTHON=' + sys.executable)"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _kernel_manager(spec_dir):
    """A kernel manager that can only start this interpreter's ipykernel."""
    kernel_dir = spec_dir / KERNEL_NAME
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python 3 ({sys.executable})",
        "language": "python",
    }))
    specs = KernelSpecManager(kernel_dirs=[str(spec_dir)], ensure_native_kernel=False)
    return AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)


def _outputs_text(cell):
    """Everything a code cell showed: streams, results and displays, as one string."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            data = output.get("data", {})
            parts.append(data.get("text/markdown") or data.get("text/plain") or "")
    return "".join(parts)


def _output_mime_types(nb):
    return [mime for cell in nb.cells for output in cell.get("outputs", [])
            for mime in output.get("data", {})]


def execute_notebook(name, tmp_path, data_dir):
    """Run `notebooks/<name>` in a fresh kernel; returns the executed notebook and its TMPDIR.

    `data_dir` is the session's dataset folder (conftest.py), so MNIST-1D is
    generated once for all tests.
    """
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    repo_files = sorted(NOTEBOOKS.rglob("*"))
    nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE))
    work, tmp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    env = {
        **os.environ,
        "KERASREG_DATA_DIR": str(data_dir),
        "TMPDIR": str(tmp),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    client = nbclient.NotebookClient(
        nb,
        km=_kernel_manager(tmp_path / "kernels"),
        kernel_name=KERNEL_NAME,
        timeout=600,
        resources={"metadata": {"path": str(work)}},
    )
    start = time.perf_counter()
    error = None
    try:
        client.execute(env=env)
    except nbclient.exceptions.CellExecutionError as exc:
        error = ANSI.sub("", str(exc))
    if error is not None:  # failed outside the except block: no chained, coloured traceback
        pytest.fail(f"{name} failed:\n{error}", pytrace=False)
    seconds = time.perf_counter() - start
    print(f"{name}: executed in {seconds:.1f} s")  # shown with `pytest -rP`; no timed asserts
    probe = _outputs_text(nb.cells.pop(0))
    assert f"KERNEL_PYTHON={sys.executable}" in probe, f"the kernel ran another Python: {probe!r}"
    assert not any(work.iterdir()), "a notebook wrote into its working directory"
    assert sorted(NOTEBOOKS.rglob("*")) == repo_files, "a notebook wrote into notebooks/"
    return nb, tmp


@pytest.mark.parametrize("name", ["quickstart.ipynb", "placement_study.ipynb"])
def test_committed_notebooks_have_no_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)


@pytest.mark.slow
def test_quickstart_runs_and_compares_both_exports(tmp_path, data_dir):
    nb, tmp = execute_notebook("quickstart.ipynb", tmp_path, data_dir)
    text = "\n".join(_outputs_text(cell) for cell in nb.cells if cell.cell_type == "code")

    assert "Dense(100) > BatchNorm > ReLU > Dropout(0.2)  x2 > Dense(10)" in text
    assert "Dense(100) > BatchNorm > ReLU  x2 > Dropout(0.2) > Dense(10)" in text
    assert "clean_gap_accuracy" in text and "reported_gap_accuracy" in text
    assert "same probabilities as export.predict: True" in text
    # The compare table lists both runs.
    table = next(_outputs_text(c) for c in nb.cells if c.cell_type == "code" and "compare_exports(" in c.source)
    assert "dataset: mnist1d (2 runs" in table
    assert "mlp-bn_act_drop-standard0.2-torchbn-seed0" in table
    assert "mlp-head_dropout-standard0.2-torchbn-seed0" in table
    assert "mean (5, 10)  std (5, 10)" in text
    # The exports went to the notebook's temporary folder.
    manifests = sorted(tmp.glob("kerasreg-quickstart-*/*/manifest.json"))
    assert [m.parent.name for m in manifests] == [
        "mlp-bn_act_drop-standard0.2-torchbn-seed0", "mlp-head_dropout-standard0.2-torchbn-seed0",
    ]


@pytest.mark.slow
def test_placement_study_writes_report_and_shows_plots(tmp_path, data_dir):
    nb, tmp = execute_notebook("placement_study.ipynb", tmp_path, data_dir)
    text = "\n".join(_outputs_text(cell) for cell in nb.cells if cell.cell_type == "code")

    (report,) = tmp.glob("kerasreg-study-*/report.md")
    markdown = report.read_text()
    assert "## Ranking" in markdown and "## Findings" in markdown
    assert "failed runs: none" in text
    for label in ("mlp / none", "mlp / bn_act_drop / standard 0.2", "mlp / head_dropout / standard 0.2"):
        assert label in markdown
    # The notebook displayed the ranking and the findings.
    assert "## Ranking" in text and "## Findings" in text and "against none" in text
    exports = sorted(p.parent.name for p in report.parent.glob("runs/*/manifest.json"))
    assert len(exports) == 6
    # The report's PNGs and the gap-curve figure were shown inline.
    pngs = _output_mime_types(nb).count("image/png")
    written = len(list(report.parent.glob("study_*.png")))
    assert written >= 3
    assert pngs == written + 1
