"""Render the results tables of README.md, BENCHMARKS.md and docs/*.md from the files in benchmarks/results.

A rendered section of a page sits between `<!-- render: NAME -->` and `<!-- end render -->`; its text is what
the Jinja2 template `benchmarks/templates/NAME.md.j2` renders from the context that the function registered
for NAME in `benchmarks/render_contexts.py` builds from the results files. A figure in the docs is therefore never typed by hand: re-run
its benchmark, then this script; `tests/test_rendered_tables.py` fails while a page and its results disagree.
Each table ends with one line naming its command, machine and results files (`_provenance.md.j2`).
Usage: python benchmarks/render_docs.py [PAGE ...]          rewrite every rendered section in place
       python benchmarks/render_docs.py --check [PAGE ...]  print a diff of each stale section, exit 1, write nothing
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import jinja2
from render_contexts import CONTEXTS, REPO

TEMPLATES = REPO / "benchmarks/templates"
OPENING, CLOSING = "<!-- render: ", "<!-- end render -->"
# A new section may be written as its two markers on consecutive lines: its body is then empty.
SECTION = re.compile(r"<!-- render: (?P<name>\w+) -->\n(?P<body>.*?)\n?<!-- end render -->", re.S)


def pages(repo: Path = REPO) -> list[Path]:
    """The pages that may hold rendered sections."""
    return [repo / "README.md", repo / "BENCHMARKS.md", *sorted((repo / "docs").glob("*.md"))]


# Number formats: the templates format every figure through these filters, so a convention lives in one place.


def rounded(value: float, digits: int) -> Decimal:
    """`value` rounded half up at its shortest decimal form, as a person rounds the printed figure: 0.2415 to 3
    digits is 0.242 (formatting the float, which is a hair below 0.2415, would give 0.241)."""
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP)


def pct(value: float, digits: int = 1, sign: str = "%") -> str:
    """A share as a percentage: 0.8384 -> '83.8%' (sign='' for a table whose header says %)."""
    return f"{rounded(value, digits + 2).scaleb(2)}{sign}"


def level(value: float) -> str:
    """A chance level or a floor: one decimal unless the percentage is whole (1/12 -> '8.3%', 0.25 -> '25%')."""
    return f"{pct(value, sign='').removesuffix('.0')}%"


def num(value: float, digits: int = 0) -> str:
    """A number with thousands separators and `digits` decimals: 2560 -> '2,560', (2.6695, 2) -> '2.67'."""
    return f"{rounded(value, digits):,}"


def pick(keys: Iterable[str], table: Mapping[str, object]) -> list:
    """The values of `keys` in `table`, in order, skipping keys it lacks (a row that joins two tasks' cells)."""
    return [table[key] for key in keys if key in table]


def table_row(cells: Iterable[str]) -> str:
    """A Markdown table row, an empty cell as one space as the hand-written rows have it: '| a | b | |'."""
    return "|" + "|".join(f" {cell} " if cell else " " for cell in cells) + "|"


def bold(text: str, when: bool = True) -> str:
    """`text` in bold where a table singles it out (the figure a section is about, a win over a baseline)."""
    return f"**{text}**" if when else text


FILTERS = {"pct": pct, "level": level, "num": num, "pick": pick, "table_row": table_row, "bold": bold}


def environment() -> jinja2.Environment:
    """Templates from benchmarks/templates; an undefined name is an error rather than an empty cell."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # Markdown, not HTML
    )
    env.filters.update(FILTERS)
    return env


def template_names() -> set[str]:
    """The sections that have a template (a leading underscore marks a part included by the others)."""
    return {path.name.removesuffix(".md.j2") for path in TEMPLATES.glob("*.md.j2") if not path.name.startswith("_")}


def render(name: str) -> str:
    """The text of section `name`, rendered now from its results files."""
    return environment().get_template(f"{name}.md.j2").render(CONTEXTS[name]()).rstrip("\n")


def sections(text: str) -> list[re.Match]:
    """The rendered sections of a page; an opening marker without its end marker is an error, not a skip."""
    found = list(SECTION.finditer(text))
    if len(found) != text.count(OPENING):
        raise ValueError(f"{text.count(OPENING)} '{OPENING}...' markers but {len(found)} closed sections")
    return found


def shown(path: Path) -> str:
    """A page's path as a report names it: relative to the repository when inside it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


@dataclass(frozen=True)
class Stale:
    """A section whose text differs from what its results render now."""

    page: Path
    name: str
    diff: str


def rerendered(page: Path) -> tuple[str, list[Stale]]:
    """A page's text with every section rendered afresh, and the sections that were stale."""
    text, stale = page.read_text(), []
    sections(text)  # an unclosed marker is an error before anything is rendered

    def replace(section: re.Match) -> str:
        name, body = section["name"], section["body"]
        fresh = render(name)
        if body != fresh:
            where = f"{shown(page)}: {name}"
            lines = difflib.unified_diff(
                body.splitlines(), fresh.splitlines(), f"{where} (as written)", f"{where} (rendered)", lineterm=""
            )
            stale.append(Stale(page, name, "\n".join(lines)))
        return f"{OPENING}{name} -->\n{fresh}\n{CLOSING}"

    return SECTION.sub(replace, text), stale


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite (or with --check, compare) the rendered sections of the given pages, by default all of them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pages", nargs="*", type=Path, help="pages to render (default: README, BENCHMARKS, docs/)")
    parser.add_argument("--check", action="store_true", help="print each stale section's diff and exit 1")
    args = parser.parse_args(argv)
    stale_pages = 0
    for page in [path.resolve() for path in args.pages] or pages():
        text, stale = rerendered(page)
        for section in stale:
            print(f"{shown(section.page)}: section {section.name} differs from its results\n{section.diff}")
        if stale and not args.check:
            page.write_text(text)
        stale_pages += bool(stale)
    if args.check and stale_pages:
        print("re-render them: python benchmarks/render_docs.py")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
