"""Plain wording for counts in messages and reports ("5 seeds", "1 run", never "run(s)")."""


def plural(count, word, plural_form=None):
    """`"1 seed"`, `"5 seeds"`: a count with its noun in the right number.

    Example:

    >>> plural(5, "seed"), plural(1, "configuration"), plural(2, "is", "are")
    ('5 seeds', '1 configuration', '2 are')
    """
    return f"{count} {word if count == 1 else plural_form or word + 's'}"
