"""README.md's generated sections: text between `<!-- name:begin -->` and `<!-- name:end -->`,
written by the tools that produce them (tools/catalogue.py, tools/mutate.py) and checked by
`tools/catalogue.py --check`. Stdlib only."""

import os

PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _span(text, name):
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    return text.index(begin) + len(begin), text.index(end)


def section(name, path=PATH):
    """The current text of section `name`, stripped."""
    with open(path) as f:
        text = f.read()
    start, end = _span(text, name)
    return text[start:end].strip()


def stale(sections, path=PATH):
    """Names of the sections ({name: text}) whose README text differs from `text`."""
    return [name for name, text in sections.items() if section(name, path) != text.strip()]


def write(sections, path=PATH):
    """Replaces each section ({name: text}) in README.md."""
    with open(path) as f:
        text = f.read()
    for name, body in sections.items():
        start, end = _span(text, name)
        text = f"{text[:start]}\n{body.strip()}\n{text[end:]}"
    with open(path, "w") as f:
        f.write(text)
