"""Compare exported runs side by side: which placement overfits least?

Each export is verified and re-evaluated through its SavedModel on the test
split of the dataset named in its manifest (reloaded with the same
validation split and seed), then shown in one table per dataset, since
numbers from different datasets are not comparable:

| column | meaning |
|---|---|
| run | export folder name |
| architecture, placement, dropout, dropout_rate, norm | how the model was built (`dropout` is `none` with rate 0 when the placement has no dropout layer) |
| parameters | `model.count_params()` |
| val_accuracy | final validation accuracy, from the manifest |
| test_accuracy | test accuracy, re-evaluated now through the SavedModel |
| clean_gap | final train accuracy in inference mode minus val accuracy (the honest gap) |
| reported_gap | final running training-mode accuracy minus val accuracy (what Keras shows) |
| variance_shift_max | final largest BatchNorm variance shift (Li et al., CVPR 2019) |
| size_kb | size of `saved_model/` on disk |
| latency_ms | median time of one SavedModel call on a batch of 256 |

Written files: `compare.csv` (every column plus dataset, test loss,
manifest test accuracy and path), `compare.md` (one table per dataset) and,
per dataset, PNG plots: clean-gap curves over epochs, test accuracy against
clean gap, and train/val accuracy curves of every run.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import pathlib
import re
import statistics
import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from kerasreg import _checks
from kerasreg._files import write_atomic
from kerasreg._tables import markdown_table, text_table
from kerasreg._text import plural
from kerasreg.analysis import plots
from kerasreg.export import MANIFEST, SAVED_MODEL, load
from kerasreg.models.placements import recorded_placement, trains_with_dropout


# column -> (header, direction): +1 higher is better, -1 lower is better, 0 text (A to Z).
COLUMNS = {
    "run": ("run", 0),
    "architecture": ("arch", 0),
    "placement": ("placement", 0),
    "dropout": ("dropout", 0),
    "dropout_rate": ("rate", -1),
    "norm": ("norm", 0),
    "parameters": ("params", -1),
    "val_accuracy": ("val_acc", +1),
    "test_accuracy": ("test_acc", +1),
    "clean_gap": ("clean_gap", -1),
    "reported_gap": ("reported_gap", -1),
    "variance_shift_max": ("var_shift_max", -1),
    "size_kb": ("size_kb", -1),
    "latency_ms": ("latency_ms", -1),
}
EXTRA_CSV_COLUMNS = ("dataset", "test_loss", "manifest_test_accuracy", "test_accuracy_reestimated",
                     "variance_shift_reestimated", "clean_gap_loss", "reported_gap_loss", "epochs_run",
                     "best_epoch", "seed", "path")
DEFAULT_SORT = "clean_gap"
LATENCY_BATCH = 256
UNKNOWN_DATASET = "(no dataset)"


class NoExportsError(ValueError):
    """No kerasreg export was found in the paths given to compare."""


class InvalidExportsError(ValueError):
    """Exports given to compare failed verification; the message names every one and why."""


def check_sort_column(sort):
    """Raise a ValueError listing the valid columns unless `sort` is one.

    Example:

    >>> check_sort_column("clean_gap")
    'clean_gap'
    """
    return _checks.one_of(sort, COLUMNS, "sort")


def find_exports(paths):
    """Export folders among `paths`: each path is an export or a folder of exports.

    Hidden folders (e.g. an export still being written) are never picked
    up from a folder; files and folders holding no export are skipped.

    Args:
        paths: str or path, or a list of them.

    Returns:
        `(exports, skipped)`: two lists of `pathlib.Path`.

    Raises:
        FileNotFoundError: a path does not exist.

    Example:

    >>> exports, skipped = find_exports(["saved_models"])  # doctest: +SKIP
    """
    if isinstance(paths, (str, pathlib.PurePath)):
        paths = [paths]
    exports, skipped, seen = [], [], set()

    def add(path):
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            exports.append(path)

    for path in map(pathlib.Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist.")
        if not path.is_dir():
            skipped.append(path)
        elif (path / MANIFEST).is_file():
            add(path)
        else:
            children = sorted(
                child for child in path.iterdir()
                if child.is_dir() and not child.name.startswith(".") and (child / MANIFEST).is_file()
            )
            if not children:
                skipped.append(path)
            for child in children:
                add(child)
    return exports, skipped


def default_output_dir(paths):
    """Where compare writes by default: the folder given when it is one folder of exports, else `compare`.

    Example:

    >>> default_output_dir(["a/run1", "a/run2"])
    PosixPath('compare')
    """
    if isinstance(paths, (str, pathlib.PurePath)):
        paths = [paths]
    if len(paths) == 1:
        path = pathlib.Path(paths[0])
        if path.is_dir() and not (path / MANIFEST).is_file():
            return path
    return pathlib.Path("compare")


def _directory_kb(path):
    return sum(f.stat().st_size for f in pathlib.Path(path).rglob("*") if f.is_file()) / 1024


def median_call_ms(fn, batch, repeats):
    """Median milliseconds of `fn(inputs=batch)` over `repeats` calls.

    Example:

    >>> median_call_ms(lambda inputs: inputs, [1], repeats=3) >= 0
    True
    """
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(inputs=batch)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def _latency_ms(export, x, repeats):
    fn = export.serving_signature()
    batch = np.resize(x, (LATENCY_BATCH, *x.shape[1:])).astype(export.manifest["input"]["dtype"])
    batch = tf.constant(batch)
    for _ in range(2):
        fn(inputs=batch)
    return median_call_ms(fn, batch, repeats)


def _test_split(dataset, data_dir, cache):
    key = (dataset["name"], dataset.get("validation_split"), dataset.get("split_seed"),
           bool(dataset.get("standardize")))
    if key not in cache:
        from kerasreg.data import load_dataset  # TFDS is slow to import; only compare needs it here

        kwargs = {}
        if dataset.get("validation_split") is not None:
            kwargs["validation_split"] = dataset["validation_split"]
        if dataset.get("split_seed") is not None:
            kwargs["seed"] = dataset["split_seed"]
        data = load_dataset(dataset["name"], data_dir=data_dir,
                            standardize=bool(dataset.get("standardize")), **kwargs)
        cache[key] = data.as_numpy("test")
    return cache[key]


def _row(path, export, data_dir, cache, latency_repeats, evaluate):
    manifest = export.manifest
    model = manifest.get("model") or {}
    metrics = manifest.get("metrics") or {}
    dataset = manifest.get("dataset")
    placement = recorded_placement(model)
    rate = model.get("dropout_rate")
    effective = trains_with_dropout(model)
    known = model.get("placement") is not None  # else not built by kerasreg: nothing to say
    test_accuracy, test_loss, latency = metrics.get("test_accuracy"), metrics.get("test_loss"), None
    if evaluate:
        test_accuracy = test_loss = None
        if dataset:
            x, y = _test_split(dataset, data_dir, cache)
            probs = export.predict(x)
            test_accuracy = float(np.mean(np.argmax(probs, axis=-1) == y))
            picked = probs[np.arange(len(y)), y.astype(int)]
            test_loss = float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
        else:
            x = np.random.default_rng(0).normal(size=(LATENCY_BATCH, *manifest["input"]["shape"]))
        latency = _latency_ms(export, x, latency_repeats)
    return {
        "run": path.name,
        "architecture": model.get("architecture"),
        "placement": model.get("placement"),
        "dropout": (model.get("dropout") if effective else "none") if known else None,
        "dropout_rate": (rate if effective else 0.0) if known else None,
        "norm": (model.get("norm") if placement is None or placement.uses_norm else "none") if known else None,
        "parameters": model.get("parameters"),
        "val_accuracy": metrics.get("val_accuracy"),
        "test_accuracy": test_accuracy,
        "clean_gap": metrics.get("clean_gap_accuracy"),
        "reported_gap": metrics.get("reported_gap_accuracy"),
        "variance_shift_max": metrics.get("variance_shift_max"),
        "size_kb": _directory_kb(path / SAVED_MODEL),
        "latency_ms": latency,
        "dataset": dataset["name"] if dataset else UNKNOWN_DATASET,
        "test_loss": test_loss,
        "manifest_test_accuracy": metrics.get("test_accuracy"),
        "test_accuracy_reestimated": metrics.get("test_accuracy_reestimated"),
        "variance_shift_reestimated": metrics.get("variance_shift_reestimated"),
        "best_epoch": metrics.get("best_epoch"),
        "clean_gap_loss": metrics.get("clean_gap_loss"),
        "reported_gap_loss": metrics.get("reported_gap_loss"),
        "epochs_run": metrics.get("epochs_run"),
        "seed": manifest.get("seed"),
        "path": str(path),
    }


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def _sort_rows(rows, sort):
    direction = COLUMNS[sort][1]

    def key(row):
        value = row[sort]
        if _missing(value):
            return (1, 0, row["run"])
        if direction == 0:
            return (0, str(value), row["run"])
        return (0, -direction * value, row["run"])

    return sorted(rows, key=key)


def _format(column, value):
    if _missing(value):
        return "-"
    if column in ("val_accuracy", "test_accuracy"):
        return f"{value:.4f}"
    if column in ("clean_gap", "reported_gap"):
        return f"{value:+.4f}"
    if column == "variance_shift_max":
        return f"{value:.3f}"
    if column == "size_kb":
        return f"{value:.1f}"
    if column == "latency_ms":
        return f"{value:.2f}"
    if column == "dropout_rate":
        return f"{value:g}"
    return str(value)


def _table(rows):
    """`(header, cells, align)` of one dataset's rows: text columns left-aligned, numbers right."""
    header = [COLUMNS[c][0] for c in COLUMNS]
    cells = [[_format(c, row[c]) for c in COLUMNS] for row in rows]
    return header, cells, ["l" if COLUMNS[c][1] == 0 else "r" for c in COLUMNS]


def _slug(text):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "dataset"


@dataclasses.dataclass
class Comparison:
    """Re-evaluated exports, grouped by dataset and sorted best first.

    Attributes:
        groups: dict mapping a dataset name to its rows (dicts keyed by
            `COLUMNS` and `EXTRA_CSV_COLUMNS`), sorted by `sort`.
        sort: str. The column the rows are sorted by.
        histories: dict mapping an export path to its per-epoch history.
        skipped: list of paths given that were not exports.
        invalid: list of `(path, reason)` of exports left out with
            `skip_invalid=True` because they failed verification.
    """

    groups: dict
    sort: str
    histories: dict
    skipped: list = dataclasses.field(default_factory=list)
    invalid: list = dataclasses.field(default_factory=list)

    @property
    def rows(self):
        """All rows, dataset by dataset."""
        return [row for rows in self.groups.values() for row in rows]

    def _header(self, dataset, rows):
        direction = COLUMNS[self.sort][1]
        order = "best first" if direction else "A to Z"
        runs = plural(len(rows), "run")
        return f"dataset: {dataset} ({runs}, sorted by {self.sort}, {order})"

    def format_table(self):
        """The comparison as aligned plain text, one table per dataset."""
        return "\n\n".join(f"{self._header(dataset, rows)}\n{text_table(*_table(rows))}"
                             for dataset, rows in self.groups.items())

    def to_markdown(self, plots=None):
        """The comparison as Markdown, one section (and its plots) per dataset."""
        parts = ["# kerasreg compare", ""]
        for dataset, rows in self.groups.items():
            parts += [f"## {dataset}", "", self._header(dataset, rows), ""]
            parts += [markdown_table(*_table(rows)), ""]
            for plot in (plots or {}).get(dataset, []):
                parts += [f"![{plot.stem}]({plot.name})", ""]
        return "\n".join(parts)

    def write_csv(self, path):
        """Write every row, with all columns, to a CSV file."""
        columns = list(COLUMNS) + list(EXTRA_CSV_COLUMNS)
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=columns)
        writer.writeheader()
        for row in self.rows:
            writer.writerow({c: "" if _missing(row[c]) else row[c] for c in columns})
        write_atomic(path, text.getvalue())
        return pathlib.Path(path)

    def plot(self, out):
        """Write the PNG plots of every dataset into `out`; returns `{dataset: [paths]}`.

        Plots without anything to show (e.g. exports of bare models, which
        have no history) are not written.
        """
        out = pathlib.Path(out)
        written = {}
        for dataset, rows in self.groups.items():
            slug = _slug(dataset)
            histories = [self.histories.get(row["path"]) or {} for row in rows]
            figures = [
                (f"clean_gap_curves-{slug}.png", plots.gap_curves(dataset, rows, histories)),
                (f"accuracy_vs_gap-{slug}.png", plots.accuracy_vs_gap(dataset, rows)),
                (f"train_val_curves-{slug}.png", plots.train_val_curves(dataset, rows, histories)),
            ]
            written[dataset] = []
            for name, fig in figures:
                if fig is not None:
                    fig.savefig(out / name, dpi=100, bbox_inches="tight")
                    written[dataset].append(out / name)
        return written

    def write(self, out, *, plots=True):
        """Write `compare.csv`, `compare.md` and (with `plots`) the PNGs into `out`; returns the paths."""
        out = pathlib.Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = self.plot(out) if plots else {}
        paths = [self.write_csv(out / "compare.csv")]
        write_atomic(out / "compare.md", self.to_markdown(written))
        paths.append(out / "compare.md")
        return paths + [p for group in written.values() for p in group]


def compare_exports(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    sort: str = DEFAULT_SORT,
    data_dir: str | os.PathLike | None = None,
    latency_repeats: int = 10,
    evaluate: bool = True,
    skip_invalid: bool = False,
) -> Comparison:
    """Verify, re-evaluate and tabulate exported runs, grouped by dataset.

    Training vs inference: test accuracy is measured through each export's
    SavedModel, i.e. in inference mode; `clean_gap` (inference-mode train
    accuracy minus val accuracy) is the column to rank placements by,
    `reported_gap` is what the Keras progress bar suggests.

    Args:
        paths: str or path, or a list of them: export folders and/or folders
            holding exports (e.g. `"saved_models"`).
        sort: str. Column to sort by, best first (accuracies descending;
            gaps, variance shift, size, latency and parameters ascending;
            text A to Z). One of `COLUMNS`. Defaults to `"clean_gap"`.
        data_dir: str or None. Where datasets are prepared; `None` means
            `kerasreg.data.default_data_dir()`. Defaults to `None`.
        latency_repeats: int. Timed SavedModel calls per export (after two
            warm-up calls); the median is reported. Defaults to `10`.
        evaluate: bool. Re-evaluate each SavedModel on the test split and time
            it. `False` takes test accuracy and loss from the manifests (the
            trained model's, which its SavedModel was checked against when
            exported) and leaves latency out: what a study's report does.
            Defaults to `True`.
        skip_invalid: bool. Compare the exports that verify and list the
            others in `Comparison.invalid`, instead of raising. Defaults to `False`.

    Returns:
        `Comparison`; `.format_table()` for text, `.write(out)` for files.

    Raises:
        ValueError: `sort` is not a column (the message lists them).
        NoExportsError: no export was found.
        InvalidExportsError: exports failed verification (checksums, manifest,
            files), without `skip_invalid`; all of them are named, each with its reason.

    Example:

    >>> comparison = kerasreg.compare_exports("saved_models", sort="test_accuracy")  # doctest: +SKIP
    >>> print(comparison.format_table())  # doctest: +SKIP
    """
    check_sort_column(sort)
    exports, skipped = find_exports(paths)
    if not exports:
        given = ", ".join(str(p) for p in ([paths] if isinstance(paths, (str, pathlib.PurePath)) else paths))
        raise NoExportsError(
            f"No kerasreg exports found in {given or 'the paths given'} (an export is a folder "
            "with a manifest.json; `kerasreg train` writes them to saved_models/)."
        )
    cache, groups, histories, invalid = {}, {}, {}, []
    for path in exports:
        try:
            export = load(path)
        except (ValueError, OSError) as exc:  # every bad export is named, not only the first
            invalid.append((path, str(exc)))
            continue
        row = _row(path, export, data_dir, cache, latency_repeats, evaluate)
        groups.setdefault(row["dataset"], []).append(row)
        histories[row["path"]] = export.history
    if invalid and (not skip_invalid or not groups):
        reasons = "".join(f"\n  {path}: {reason}" for path, reason in invalid)
        raise InvalidExportsError(
            f"{len(invalid)} of {len(exports)} exports failed verification:{reasons}\n"
            + ("Export them again or remove them, or pass skip_invalid=True (`--skip-invalid`) to compare the rest."
               if groups else "None is left to compare.")
        )
    order = sorted(groups, key=lambda name: (name == UNKNOWN_DATASET, name))
    groups = {name: _sort_rows(groups[name], sort) for name in order}
    return Comparison(groups=groups, sort=sort, histories=histories, skipped=skipped, invalid=invalid)
