"""The study report as Markdown and as one self-contained HTML page (figures inline as base64 PNG).

Both formats hold the same sections in the same order: the answer first,
then the ranking, findings, failed runs, figures and the per-run table.
"""

import base64
import dataclasses
import html
import re

from kerasreg._tables import html_table, markdown_table

RANKING_NOTE = (
    "Mean and 95% confidence interval over seeds, ranked by mean test accuracy. "
    "Clean gap = train accuracy re-measured in inference mode minus validation accuracy; "
    "reported gap = Keras's running training accuracy minus validation accuracy; "
    "variance shift = max(r, 1/r) of the BatchNorm input variance at inference over its moving "
    "variance (1 = none)."
)
FIGURE_NOTES = {
    "study_test_accuracy": "Test accuracy per configuration: every seed as a dot, mean and 95% CI in black, "
                           "on an axis zoomed to the data; the grey band is the best configuration's interval.",
    "study_gaps": "Clean gap (final model, inference mode) next to the reported gap (Keras's running training "
                  "accuracy) per configuration, in the ranking's order.",
    "study_variance_shift": "BatchNorm variance shift against test accuracy, one point per configuration "
                            "(colour: placement, marker: architecture).",
    "study_learning_curves": "Validation and inference-mode training accuracy per epoch: mean over seeds "
                             "with a min-max band, one panel per architecture and placement.",
}
RUNS_NOTE = "Every run, re-evaluated from its SavedModel export (what `compare.csv` holds), best test accuracy first."
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
    "#answer{background:#f3f7ff;border-left:4px solid #3366cc;padding:.2em 1em}"
    "table{border-collapse:collapse;font-size:.85em;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td{white-space:nowrap}th{background:#f4f4f4}"
    "td.l,th.l{text-align:left}#ranking tbody tr:first-child{font-weight:600}"
    "figure{margin:1.5em 0}img{max-width:100%;height:auto}figcaption{color:#555;font-size:.9em}"
    ".scroll{overflow-x:auto}"
)


@dataclasses.dataclass
class Page:
    """What the report shows. Tables are `(headers, rows of cell text, alignments "l" or "r")`."""

    title: str
    config_text: str
    answer: list
    ranking: tuple
    findings: list
    failures: dict
    figures: list
    runs: tuple


def markdown(page):
    """`page` as Markdown; figures are linked by file name (they sit next to `report.md`).

    Example:

    >>> print(markdown(Page("t", "c", ["a"], ([], [], []), [], {}, [], ([], [], []))).splitlines()[2])
    ## Answer
    """
    parts = [f"# {page.title}", "", "## Answer", ""] + [f"- {line}" for line in page.answer]
    parts += ["", page.config_text, "", "## Ranking", "", RANKING_NOTE, "", markdown_table(*page.ranking)]
    parts += ["", "## Findings", ""] + [f"- {line}" for line in page.findings]
    if page.failures:
        parts += ["", "## Failed runs", ""] + [f"- `{n}`: {e}" for n, e in sorted(page.failures.items())]
    parts += ["", "## Figures", ""]
    for path in page.figures:
        parts += [FIGURE_NOTES.get(path.stem, path.stem), "", f"![{path.stem}]({path.name})", ""]
    parts += ["## Per-run results", "", RUNS_NOTE, "", markdown_table(*page.runs), ""]
    return "\n".join(parts)


def _inline(text):
    """One line of Markdown (**bold**, `code`) as escaped HTML."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def _html_table(table_id, table):
    """A table that scrolls sideways instead of widening the page."""
    return f'<div class="scroll">{html_table(*table, table_id=table_id)}</div>'


def _figure(path):
    data = base64.b64encode(path.read_bytes()).decode()
    return (f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(FIGURE_NOTES.get(path.stem, path.stem))}</figcaption></figure>")


def _items(texts):
    return "<ul>" + "".join(f"<li>{_inline(t)}</li>" for t in texts) + "</ul>"


def html_page(page):
    """`page` as one self-contained HTML document: styles and figures inline, nothing fetched.

    Example:

    >>> "<section id='answer'>" in html_page(Page("t", "c", ["a"], ([], [], []), [], {}, [], ([], [], [])))
    True
    """
    failed = [f"`{name}`: {error}" for name, error in sorted(page.failures.items())]
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(page.title)}</title>"
        f"<link rel='icon' href='data:,'><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(page.title)}</h1>"
        f"<section id='answer'><h2>Answer</h2>{_items(page.answer)}</section><p>{_inline(page.config_text)}</p>"
        f"<h2>Ranking</h2><p>{_inline(RANKING_NOTE)}</p>{_html_table('ranking', page.ranking)}"
        f"<h2>Findings</h2>{_items(page.findings)}"
        + (f"<h2>Failed runs</h2>{_items(failed)}" if page.failures else "")
        + "<h2>Figures</h2>" + "".join(_figure(p) for p in page.figures)
        + f"<h2>Per-run results</h2><p>{_inline(RUNS_NOTE)}</p>{_html_table('runs', page.runs)}"
        + "</body></html>"
    )
