"""A griffe extension: Keras-style examples become code blocks in the API reference.

kerasreg's docstrings follow Keras: after `Example:` the `>>>` lines start at the
docstring's own indentation, where the Google-style parser reads them as prose
(and Markdown turns `['a', 'b']` into link references). This indents each such
doctest block (the `>>>`/`...` lines and the output up to the next blank line)
under its `Example:` header, so it renders as a console block. Nothing in the
package changes; mkdocs.yml loads it for mkdocstrings.
"""

import re

import griffe

_HEADER = re.compile(r"^(Example|Examples):\s*$")


def indent_examples(text):
    """Indent the column-0 doctest blocks that follow an `Example:` header."""
    out, in_example, in_block = [], False, False
    for line in text.splitlines():
        if _HEADER.match(line):
            in_example, in_block = True, False
        elif in_example and line.startswith(">>>"):
            in_block = True
        elif not line.strip():
            in_block = False
        elif in_example and not in_block and not line.startswith(" "):
            in_example = False  # prose at column 0 ends the section
        out.append(f"    {line}" if in_example and in_block else line)
    return "\n".join(out)


class KerasExamples(griffe.Extension):
    """Apply `indent_examples` to every docstring griffe loads."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = indent_examples(obj.docstring.value)
