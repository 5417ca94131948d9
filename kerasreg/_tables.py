"""The one table renderer: a header and rows of cells as Markdown, HTML or aligned plain text.

Every report kerasreg writes (`diagnose.md`/`.html`, `report.md`/`.html`,
`compare.md` and the terminal's tables) renders its tables here, so the three
formats stay alike. `align` gives each column's alignment, "l" (left) or "r"
(right); without it every column is left-aligned. Cells are shown with `str`.
"""

import html


def _alignments(header, align):
    return ["l"] * len(header) if align is None else list(align)


def markdown_table(header, rows, align=None):
    """The table as Markdown lines joined by newlines: header, alignment rule, one line per row.

    Example:

    >>> print(markdown_table(("run", "accuracy"), [("a", 0.9)], align="lr"))
    | run | accuracy |
    |---|---:|
    | a | 0.9 |
    """
    rule = ["---" if a == "l" else "---:" for a in _alignments(header, align)]
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "|".join(rule) + "|"]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def html_table(header, rows, align=None, *, table_id=None):
    """The table as one escaped HTML `<table>`; with `align`, every cell has the class "l" or "r".

    Example:

    >>> html_table(("a<b",), [(1,)], table_id="runs")
    '<table id="runs"><thead><tr><th>a&lt;b</th></tr></thead><tbody><tr><td>1</td></tr></tbody></table>'
    """
    classes = [""] * len(header) if align is None else [f' class="{a}"' for a in align]

    def cells(tag, values):
        return "".join(f"<{tag}{c}>{html.escape(str(v))}</{tag}>" for v, c in zip(values, classes))

    opening = "<table>" if table_id is None else f'<table id="{html.escape(table_id)}">'
    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f"{opening}<thead><tr>{cells('th', header)}</tr></thead><tbody>{body}</tbody></table>"


def text_table(header, rows, align=None, *, rule=False):
    """The table as fixed-width plain text, columns two spaces apart; with `rule`, dashes under the header.

    Example:

    >>> print(text_table(("run", "accuracy"), [("a", 0.9)], align="lr", rule=True))
    run  accuracy
    ---  --------
    a         0.9
    """
    lines = [[str(c) for c in line] for line in (header, *rows)]
    widths = [max(len(c) for c in column) for column in zip(*lines)]
    if rule:
        lines.insert(1, ["-" * w for w in widths])
    pad = [str.ljust if a == "l" else str.rjust for a in _alignments(header, align)]
    return "\n".join("  ".join(p(c, w) for c, w, p in zip(line, widths, pad)).rstrip() for line in lines)
