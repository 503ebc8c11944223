"""Documentation that ships (issue 25, item 4): every file the README, docs/, the committed
verdicts, the tests and td_jax's source cite is in the repository; every "SCIENCE.md section
N" they cite is a numbered section of docs/SCIENCE.md; the docs' python examples run.

A bare ``SCIENCE.md`` is docs/SCIENCE.md; another bare ``name.md`` must be some shipped
file of that name (``verdict.md``: a results directory's); a path under docs/, results/,
tests/, examples/, benchmarks/ or td_jax/ must exist, and one with a placeholder
(``results/<suite>/``) must match a shipped path or have an existing folder before it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCIENCE = ROOT / "docs" / "SCIENCE.md"
SKIP_DIRS = {".git", ".venv", "__pycache__", ".units", "td_jax.egg-info", ".staging"}
PREFIXES = ("docs", "results", "tests", "examples", "benchmarks", "td_jax")
PATH = re.compile(rf"(?<![\w./~-])(?:{'|'.join(PREFIXES)})/[\w./<>*-]*|[\w./<>*-]*\.md\b")
SECTIONS = re.compile(
    r"SCIENCE\.md[\])]?,?\s+(?:sections?\s+)?(\d+(?:\.\d+)?(?:\s*(?:-|–|,|and|or|to)\s*\d+(?:\.\d+)?)*)"
)
HEADING = re.compile(r"^#{2,4}\s+(\d+(?:\.\d+)?)\.?\s", re.MULTILINE)
NOT_RUN = "<!-- docs-test: not run by default"


def sources(tests: bool = False) -> Iterator[Path]:
    """README.md, docs/*.md, the committed verdicts and every .py file of td_jax/; with
    ``tests``, tests/ too (this file aside: it holds the detector's bad citations)."""
    yield ROOT / "README.md"
    yield from sorted((ROOT / "docs").glob("*.md"))
    yield from sorted((ROOT / "results").glob("*/verdict.md"))
    for folder in ("td_jax", "tests") if tests else ("td_jax",):
        yield from (p for p in sorted((ROOT / folder).rglob("*.py")) if p != Path(__file__))


def flat(text: str) -> str:
    """Text with wrapped lines joined: comment markers and the quotes of implicitly
    concatenated string literals dropped, whitespace collapsed (so that a citation split
    over two source lines reads as one)."""
    text = re.sub(r"[\"']\s*\n\s*[rbfu]*[\"']", "", text)
    text = re.sub(r"\n\s*#+\s*", " ", text)
    return re.sub(r"\s+", " ", text)


def cited_sections(text: str) -> list[str]:
    """Every section number cited as "SCIENCE.md section(s) N" (ranges expanded)."""
    out = []
    for match in SECTIONS.finditer(flat(text)):
        spec = match.group(1)
        for a, b in re.findall(r"(\d+(?:\.\d+)?)\s*(?:-|–|to)\s*(\d+(?:\.\d+)?)", spec):
            out += [str(n) for n in range(int(float(a)), int(float(b)) + 1)]
        out += re.findall(r"\d+(?:\.\d+)?", spec)
    return out


def shipped_names() -> set[str]:
    names = set()
    for _, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        names.update(files)
    return names


def missing_files(text: str, names: set[str]) -> list[str]:
    """The cited files (and paths) of ``text`` that the repository does not hold."""
    bad = []
    for token in PATH.findall(text):
        token = token.rstrip(".,;:`'\")").removeprefix("./")
        if not token or token == ".md" or token.startswith((".", "/")):
            continue
        if token == "SCIENCE.md":
            token = "docs/SCIENCE.md"
        if "<" in token or "*" in token:
            pattern = re.sub(r"<[^>]*>", "*", token)
            head = token.split("<")[0].split("*")[0]
            found = list(ROOT.glob(pattern)) if "/" in pattern else [
                n for n in names if Path(n).match(pattern)]  # fmt: skip
            if not found and not (ROOT / head.rpartition("/")[0]).is_dir():
                bad.append(token)
        elif "/" in token:
            if not (ROOT / token).exists():
                bad.append(token)
        elif token not in names:
            bad.append(token)
    return bad


def headings() -> set[str]:
    return set(HEADING.findall(SCIENCE.read_text()))


def test_every_cited_file_ships():
    names = shipped_names()
    bad = {}
    for path in sources():
        found = missing_files(path.read_text(), names)
        if found:
            bad[str(path.relative_to(ROOT))] = sorted(set(found))
    assert not bad, f"cited but not in the repository: {bad}"


def test_every_cited_section_is_a_numbered_heading_of_docs_science():
    have = headings()
    assert {str(n) for n in range(1, 12)} <= have, sorted(have)
    bad = {}
    for path in sources(tests=True):
        text = path.read_text()
        if path == SCIENCE:  # its own cross-references: "section N" without the name
            text = re.sub(r"\bsections? (?=\d)", "SCIENCE.md section ", text)
        missing = sorted(set(cited_sections(text)) - have)
        if missing:
            bad[str(path.relative_to(ROOT))] = missing
    assert not bad, f"cited sections missing from docs/SCIENCE.md: {bad}"


def test_the_detectors_catch_a_bad_citation_and_pass_good_ones():
    names = shipped_names()
    science = "SCIENCE" + ".md"  # spelled apart: this file is not scanned, but stays clean
    assert missing_files(f"see {science} and results/default/verdict.md", names) == []
    assert missing_files("see results/<suite>/.units/ and results/throughput_<x>.md", names) == []
    assert missing_files("see NO_SUCH" + ".md and docs/none" + ".md", names) == [
        "NO_SUCH.md", "docs/none.md"]  # fmt: skip
    assert missing_files("see DESIGN" + ".md, Principles", names) == ["DESIGN.md"]
    assert cited_sections(f'({science} "\n   "sections 7-9; {science} 4)') == [
        "7", "8", "9", "7", "9", "4"]  # fmt: skip
    assert cited_sections(f"{science}\n    # section 42") == ["42"]
    assert "42" not in headings() and {"7", "9", "10"} <= headings()


def python_blocks(path: Path) -> list[tuple[str, bool]]:
    """(code, run by default) of each ```python block of a markdown file."""
    text = path.read_text()
    out = []
    for match in re.finditer(r"```python\n(.*?)```", text, re.DOTALL):
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
        out.append((match.group(1), not before.startswith(NOT_RUN)))
    return out


@pytest.mark.parametrize("name", ["api.md", "SCIENCE.md"])
def test_the_docs_python_examples_run(name, tmp_path, monkeypatch):
    """Each block in order, in one namespace, in an empty directory; a block whose first
    line is ``# file.py`` is written to that file (importable by the next blocks)."""
    blocks = python_blocks(ROOT / "docs" / name)
    assert blocks, f"docs/{name} has no python example"
    run_all = os.environ.get("TD_JAX_DOCS_ALL") == "1"
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    modules = set(sys.modules)
    namespace: dict = {"__name__": f"docs_{name.split('.')[0]}"}
    try:
        for code, default in blocks:
            first = code.splitlines()[0]
            if re.fullmatch(r"# \w+\.py", first):
                (tmp_path / first[2:]).write_text(code)
            elif default or run_all:
                exec(compile(code, f"docs/{name}", "exec"), namespace)  # noqa: S102
    finally:
        for module in set(sys.modules) - modules:
            if getattr(sys.modules[module], "__file__", "") and str(tmp_path) in str(
                sys.modules[module].__file__
            ):
                del sys.modules[module]
