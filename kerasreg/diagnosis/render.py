"""A `Diagnosis` on the terminal and on disk: `diagnose.md`, `diagnose.html` (with the figure), `diagnose.json`."""

from __future__ import annotations

import base64
import errno
import html
import io
import json
import math
import os
import pathlib

from kerasreg.analysis.plots import new_figure
from kerasreg._files import write_atomic
from kerasreg._json import jsonable
from kerasreg._tables import html_table, markdown_table, text_table
from kerasreg.diagnosis.batch_norm_audit import audit_sentences
from kerasreg.diagnosis.verdict import PART_TITLES, gap_part_lines

FILES = ("diagnose.md", "diagnose.html", "diagnose.json")


def _number(value, fmt=".3f"):
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, fmt)


def layer_rows(diagnosis):
    """One row per BatchNormalization: `(name, variance shift, the dropout paths that reach it)`."""
    shift = diagnosis.variance_shift
    rows = []
    for name in diagnosis.structure.batch_norm_layers:
        ratio = shift.get(name, shift.get(name.split("/")[-1]))
        feeding = [p.dropout for p in diagnosis.structure.paths if p.batch_norm == name]
        rows.append((name, ratio, ", ".join(feeding)))
    return rows


def _metric_rows(diagnosis):
    metrics, gaps = diagnosis.to_dict()["metrics"], diagnosis.to_dict()["gaps"]
    re = diagnosis.reestimation or {}
    rows = [("validation accuracy", metrics.get("val_accuracy"), re.get("val_accuracy")),
            ("validation loss", metrics.get("val_loss"), re.get("val_loss"))]
    if "test_accuracy" in metrics:
        rows += [("test accuracy", metrics.get("test_accuracy"), re.get("test_accuracy")),
                 ("test loss", metrics.get("test_loss"), re.get("test_loss"))]
    rows += [("train accuracy, inference mode (clean)", metrics.get("train_clean_accuracy"), None),
             ("train accuracy, training mode (reported)", metrics.get("train_reported_accuracy"), None),
             ("clean gap, accuracy", gaps.get("clean_gap_accuracy"), None),
             ("reported gap, accuracy", gaps.get("reported_gap_accuracy"), None),
             ("clean gap, loss", gaps.get("clean_gap_loss"), None),
             ("reported gap, loss", gaps.get("reported_gap_loss"), None)]
    if diagnosis.mc_dropout:
        rows.append((f"MC-dropout spread ({diagnosis.mc_dropout['samples']} samples)",
                     diagnosis.mc_dropout["mean_std"], None))
    return rows


def _metric_cells(diagnosis):
    return [(name, _number(before), _number(after)) for name, before, after in _metric_rows(diagnosis)]


def _layer_cells(diagnosis):
    return [(name, _number(ratio), feeding or "-") for name, ratio, feeding in layer_rows(diagnosis)]


def _audit(diagnosis):
    """The BatchNorm audit's sentences (for a model without BatchNorm: that there is nothing to audit)."""
    return audit_sentences(diagnosis.batch_norm, len(diagnosis.structure.batch_norm_layers))
_GAP_TITLE = "fit vs evaluate on the same training rows, taken apart"
_GAP_HEADER = ("part", "accuracy (points)", "loss", "share of the gap")


def gap_part_cells(diagnosis):
    """The table of `diagnosis.gap_parts`: one row per part, then the whole gap (fit minus evaluate).

    Example:

    >>> gap_part_cells(kerasreg.diagnose(model, data))[-1][0]  # doctest: +SKIP
    'fit minus evaluate'
    """
    parts = diagnosis.gap_parts

    def points(value):
        return "-" if value is None else f"{100.0 * value:+.1f}"

    rows = [(PART_TITLES[p.name], points(p.accuracy), f"{p.loss:+.4f}",
             "-" if p.share is None else f"{p.share:.0%}") for p in parts]
    gap = parts.gap
    return rows + [("fit minus evaluate", points(gap["accuracy"]), f"{gap['loss']:+.4f}",
                    "100%" if any(p.share is not None for p in parts) else "-")]


def _gap_text(diagnosis):
    if diagnosis.gap_parts is None:
        return []
    return ["", _GAP_TITLE, *(f"- {line}" for line in gap_part_lines(diagnosis.gap_parts)), "",
            text_table(_GAP_HEADER, gap_part_cells(diagnosis), rule=True)]


def _gap_markdown(diagnosis):
    if diagnosis.gap_parts is None:
        return []
    return ["", f"## {_GAP_TITLE}", "", *(f"- {line}" for line in gap_part_lines(diagnosis.gap_parts)), "",
            markdown_table(_GAP_HEADER, gap_part_cells(diagnosis))]


def _gap_html(diagnosis):
    if diagnosis.gap_parts is None:
        return []
    return [f"<h2>{html.escape(_GAP_TITLE)}</h2><ul>",
            *(f"<li>{html.escape(line)}</li>" for line in gap_part_lines(diagnosis.gap_parts)), "</ul>",
            html_table(_GAP_HEADER, gap_part_cells(diagnosis))]


_METRIC_HEADER = ("measure", "as trained", "BN re-estimated")
_LAYER_HEADER = ("BatchNormalization", "variance shift", "fed by dropout")


def format_text(diagnosis):
    """The verdict and the tables, for the terminal.

    Example:

    >>> print(format_text(kerasreg.diagnose(model, data)))  # doctest: +SKIP
    """
    parts = [f"Diagnosis of {diagnosis.model_name!r} on {diagnosis.dataset!r}", "",
             *(f"- {sentence}" for sentence in diagnosis.verdict), "",
             text_table(_METRIC_HEADER, _metric_cells(diagnosis), rule=True)]
    if diagnosis.structure.batch_norm_layers:
        parts += ["", text_table(_LAYER_HEADER, _layer_cells(diagnosis), rule=True)]
    parts += ["", "BatchNorm audit:", *(f"- {sentence}" for sentence in _audit(diagnosis))]
    parts += _gap_text(diagnosis)
    return "\n".join(parts)


def markdown(diagnosis):
    """The report as Markdown (`diagnose.md`)."""
    parts = [f"# Diagnosis of `{diagnosis.model_name}` on `{diagnosis.dataset}`", "",
             *(f"- {sentence}" for sentence in diagnosis.verdict), "", "## Measures", "",
             markdown_table(_METRIC_HEADER, _metric_cells(diagnosis))]
    if diagnosis.structure.batch_norm_layers:
        parts += ["", "## BatchNormalization layers", "", markdown_table(_LAYER_HEADER, _layer_cells(diagnosis))]
    parts += ["", "## BatchNorm audit", "", *(f"- {sentence}" for sentence in _audit(diagnosis))]
    parts += _gap_markdown(diagnosis)
    return "\n".join(parts) + "\n"


def shift_figure(diagnosis):
    """The per-layer variance-shift bar chart as PNG bytes, or None without BatchNorm.

    Bars of layers a dropout path reaches are drawn in the warning colour.
    """
    rows = [(name, ratio, feeding) for name, ratio, feeding in layer_rows(diagnosis) if ratio is not None]
    if not rows:
        return None
    fig = new_figure((7.0, 1.2 + 0.22 * len(rows)))
    ax = fig.add_subplot()
    positions = range(len(rows))
    ax.barh(positions, [r for _, r, _ in rows], color=["#d62728" if f else "#1f77b4" for _, _, f in rows])
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(list(positions), [n for n, _, _ in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("variance shift (inference variance / moving variance); red: fed by dropout")
    ax.set_title(f"{diagnosis.model_name}: variance shift per BatchNormalization layer")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def html_page(diagnosis):
    """The report as one self-contained HTML page (`diagnose.html`, figure inline)."""
    title = f"Diagnosis of {diagnosis.model_name} on {diagnosis.dataset}"
    figure = shift_figure(diagnosis)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:2px 8px;"
             "text-align:left}img{max-width:100%}</style></head><body>", f"<h1>{html.escape(title)}</h1><ul>",
             *(f"<li>{html.escape(s)}</li>" for s in diagnosis.verdict), "</ul><h2>Measures</h2>",
             html_table(_METRIC_HEADER, _metric_cells(diagnosis))]
    if figure is not None:
        data = base64.b64encode(figure).decode()
        parts.append(f'<h2>Variance shift</h2><img alt="variance shift per layer" src="data:image/png;base64,{data}">')
    if diagnosis.structure.batch_norm_layers:
        parts += ["<h2>BatchNormalization layers</h2>", html_table(_LAYER_HEADER, _layer_cells(diagnosis))]
    parts += ["<h2>BatchNorm audit</h2><ul>", *(f"<li>{html.escape(s)}</li>" for s in _audit(diagnosis)), "</ul>"]
    parts += _gap_html(diagnosis)
    return "".join(parts) + "</body></html>\n"


def check_target(out, *, overwrite=False):
    """`out` as a Path, refused before anything is measured when the diagnosis could not be written there.

    Raises:
        NotADirectoryError: `out`, or a folder above it, is a file.
        PermissionError: the nearest existing folder is not writable.
        FileExistsError: `out` already holds a diagnosis and `overwrite` is False.

    Example:

    >>> check_target("fresh_folder").name
    'fresh_folder'
    """
    out = pathlib.Path(out)
    nearest = next((p for p in (out, *out.parents) if p.exists()), pathlib.Path("."))
    if not nearest.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(nearest))
    if not os.access(nearest, os.W_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(nearest))
    existing = [name for name in FILES if (out / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{str(out)!r} already holds a diagnosis ({', '.join(existing)}); choose another "
                              "folder or pass overwrite=True (`--overwrite`).")
    return out


def write(diagnosis, out, *, overwrite=False):
    """Write `diagnose.md`, `diagnose.html` and `diagnose.json` into folder `out`.

    Each file is written to a temporary sibling and renamed into place. An
    existing report is never replaced unless `overwrite=True`.

    Returns:
        list of pathlib.Path, the files written.

    Example:

    >>> write(kerasreg.diagnose(model, data), "diagnosis")  # doctest: +SKIP
    """
    out = check_target(out, overwrite=overwrite)
    os.makedirs(out, exist_ok=True)
    texts = {"diagnose.md": markdown(diagnosis), "diagnose.html": html_page(diagnosis),
             "diagnose.json": json.dumps(jsonable(diagnosis.to_dict()), indent=2, allow_nan=False) + "\n"}
    for name, text in texts.items():
        write_atomic(out / name, text)
    return [out / name for name in FILES]
