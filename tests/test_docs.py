"""Documentation that ships (issue 25, item 4): every file the README, docs/, the committed
verdicts, the tests and td_jax's source cite is in the repository; every section of
docs/SCIENCE.md they cite exists, and on the clear topics it is the right one; the docs'
python examples all run.

Files: a bare ``SCIENCE.md`` is docs/SCIENCE.md; another bare ``name.md`` must be some
shipped file of that name (``verdict.md``: a results directory's); a path under docs/,
results/, tests/, examples/, benchmarks/ or td_jax/ must exist, and one with a placeholder
(``results/<suite>/``) must match a shipped path or have an existing folder before it. A
path that starts with ``./`` or ``../`` is read from the citing file's folder and must stay
inside the repository and exist; an absolute path is never a citation of a shipped file.
The README's other file names (``Makefile``, ``constraints.txt``, ...) must ship too, but
for the few it asks its reader to create (``USER_FILES``).

Sections: "SCIENCE.md section N", "SCIENCE.md sections 7-9", "SCIENCE.md (section N)",
"SCIENCE.md: section N", "SCIENCE.md N", "section N of SCIENCE.md" and "§N", and within
docs/SCIENCE.md itself "section N" and the glossary's "(7.4, 9.4)".
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
PATH = re.compile(
    rf"(?<![\w./~-])(?:{'|'.join(PREFIXES)})/[\w./<>*-]*"  # a repository path
    r"|(?<![\w.~/-])(?:\.\.?/)+[\w<>*.-]+(?:/[\w<>*.-]+)*/?"  # ./x, ../x: from the citing file
    r"|(?<![\w.~/:-])/(?!(?:proc|sys|dev|tmp)/)(?:[\w.-]+/)+[\w.-]+"  # an absolute path
    r"|[\w.<>*-][\w./<>*-]*\.md\b"
)
# The README's other file names, and those it has its reader create (not shipped).
README_FILE = re.compile(
    r"(?<![\w./~-])[\w-]+\.(?:txt|toml|cfg|py|json|csv|png|npz|lock|yml|yaml)\b|\bMakefile\b"
)
WRITTEN = re.compile(r"\w\s*/\s*\"([\w-]+\.md)\"")  # out / "page.md" in td_jax's source
USER_FILES = {"my_rules.py", "run.npz", "task.json", "multi_host.npz"}
NUMS = r"(\d+(?:\.\d+)?(?:\s*(?:-|–|,|and|or|to)\s*\d+(?:\.\d+)?)*)"
SCI = r"(?:docs/)?SCIENCE\.md"
SECTIONS = re.compile(
    rf"{SCI}[\])]*[,:]?\s+\(?(?:(?:sections?|§§?)\s*)?{NUMS}"  # SCIENCE.md (section) N
    rf"|(?:sections?|§§?)\s*{NUMS}\s+(?:of|in)\s+(?:the\s+)?\[?{SCI}"  # section N of SCIENCE.md
    rf"|§§?\s*{NUMS}"  # §N: SCIENCE.md is the only numbered document
)
HEADING = re.compile(r"^#{2,4}\s+(\d+(?:\.\d+)?)\.?\s", re.MULTILINE)
ANCHOR = re.compile(r"SCIENCE\.md#([\w-]+)")
# Clear topics and the sections that define them: a citation whose clause (at most CLAUSE
# characters back to a sentence, list, table cell or code boundary) names the topic must
# cite one of them (a section or one of its subsections), or the glossary (11).
CLAUSE = 240
STOPS = (". ", "; ", "? ", "! ", "| ", " - ", "```", '"""')
TOPICS = {
    r"standardi[sz]|mean 1,? (?:and )?std 1|differ only in shape|return scale|RMS return": {"6"},
    r"Lyapunov|asymptotic (?:theory|variance|speed-up)|S_inf": {"10"},
    r"glossary": {"11"},
    r"relative eps|initial error|\be0\b|all-zero estimate": {"7", "8"},
    r"bias floor|floor of|Cramer": {"2", "3", "4", "7", "8"},
    r"compass": {"9"},
    r"imput": {"4"},
    r"Benjamini|false discovery|null control|nulls that can fail|false.positive": {"7", "9"},
    r"value iteration|greedy|Q-learning": {"8", "9"},
}


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


def _numbers(spec: str) -> list[str]:
    out = []
    for a, b in re.findall(r"(\d+(?:\.\d+)?)\s*(?:-|–|to)\s*(\d+(?:\.\d+)?)", spec):
        out += [str(n) for n in range(int(float(a)), int(float(b)) + 1)]
    return out + re.findall(r"\d+(?:\.\d+)?", spec)


def citations(text: str) -> list[tuple[list[str], str]]:
    """(the sections cited, the clause citing them) of every SCIENCE.md citation."""
    text = flat(text)
    out = []
    for match in SECTIONS.finditer(text):
        spec = next(g for g in match.groups() if g is not None)
        start = max(match.start() - CLAUSE, *(text.rfind(s, 0, match.start()) for s in STOPS))
        out.append((_numbers(spec), text[start + 1 : match.end()]))
    return out


def cited_sections(text: str) -> list[str]:
    """Every section number cited (ranges expanded)."""
    return [n for numbers, _ in citations(text) for n in numbers]


def wrong_sections(text: str) -> list[str]:
    """The citations (clause: sections) whose clause names a clear topic of other sections."""
    bad = []
    for numbers, clause in citations(text):
        tops = {n.split(".")[0] for n in numbers}
        for topic, allowed in TOPICS.items():
            if re.search(topic, clause, re.IGNORECASE) and not tops & (allowed | {"11"}):
                bad.append(f"{clause.strip()!r}: {topic} is in section {sorted(allowed)}")
    return bad


def shipped_names() -> set[str]:
    """Every file name in the repository, and the pages td_jax writes into a results
    directory (``out / "atlas.md"``): a bare page name names that output, not a file of the
    repository, until a suite that writes it is committed."""
    names = set()
    for _, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        names.update(files)
    for path in (ROOT / "td_jax").rglob("*.py"):
        names.update(WRITTEN.findall(path.read_text()))
    return names


def missing_files(text: str, names: set[str], folder: Path = ROOT) -> list[str]:
    """The cited files (and paths) of ``text``, read in ``folder``, that the repository does
    not hold: a path outside it (absolute, or ``../`` out of it) is never one it holds."""
    bad = []
    for token in PATH.findall(text):
        token = token.rstrip(".,;:`'\")")
        if token.startswith("/"):
            bad.append(token)
            continue
        if token.startswith(("./", "../")):
            where = Path(os.path.normpath(folder / token))
            if where == ROOT or not where.is_relative_to(ROOT) or not where.exists():
                bad.append(token)
            continue
        if not token or token == ".md" or token.startswith("."):
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


def anchors() -> set[str]:
    """GitHub's anchors of docs/SCIENCE.md's headings."""
    out = set()
    for line in SCIENCE.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return out


def test_every_cited_file_ships():
    names = shipped_names()
    bad = {}
    for path in sources():
        found = missing_files(path.read_text(), names, path.parent)
        if path.name == "README.md" and path.parent == ROOT:
            files = set(README_FILE.findall(path.read_text())) - USER_FILES
            found += sorted(n for n in files if n not in names)
        if found:
            bad[str(path.relative_to(ROOT))] = sorted(set(found))
    assert not bad, f"cited but not in the repository: {bad}"


def test_every_cited_section_is_a_numbered_heading_of_docs_science():
    have = headings()
    assert {str(n) for n in range(1, 13)} <= have, sorted(have)
    bad = {}
    for path in sources(tests=True):
        text = path.read_text()
        if path == SCIENCE:  # its own cross-references: "section N" and the glossary's "(N)"
            text = re.sub(r"\bsections?\s+(?=\d)", "SCIENCE.md section ", text)
            glossary = text[text.index("## 11. Glossary") : text.index("## 12. References")]
            text += " ".join(
                f"SCIENCE.md sections {g}."
                for g in re.findall(r"\((\d+(?:\.\d+)?(?:, \d+(?:\.\d+)?)*)\)", glossary)
            )
        missing = sorted(set(cited_sections(text)) - have)
        missing += [f"#{a}" for a in ANCHOR.findall(text) if a not in anchors()]
        if missing:
            bad[str(path.relative_to(ROOT))] = missing
    assert not bad, f"cited sections missing from docs/SCIENCE.md: {bad}"


def test_a_cited_section_is_the_one_that_treats_its_topic():
    bad = {}
    for path in sources(tests=True):
        text = path.read_text()
        if path == SCIENCE:
            text = re.sub(r"\bsections?\s+(?=\d)", "SCIENCE.md section ", text)
        found = wrong_sections(text)
        if found:
            bad[str(path.relative_to(ROOT))] = found
    assert not bad, f"a citation names the wrong section of docs/SCIENCE.md: {bad}"


def test_the_detectors_catch_a_bad_citation_and_pass_good_ones():
    names = shipped_names()
    science = "SCIENCE" + ".md"  # spelled apart: this file is not scanned, but stays clean
    assert missing_files(f"see {science} and results/default/verdict.md", names) == []
    assert missing_files("see results/<suite>/.units/ and results/throughput_<x>.md", names) == []
    assert missing_files("see NO_SUCH" + ".md and docs/none" + ".md", names) == [
        "NO_SUCH.md", "docs/none.md"]  # fmt: skip
    assert missing_files("see DESIGN" + ".md, Principles", names) == ["DESIGN.md"]
    # outside the repository: never a citation, whatever the file
    assert missing_files(f"see ../shared/{science} and /work/x/{science}", names) == [
        f"../shared/{science}", f"/work/x/{science}"]  # fmt: skip
    assert missing_files("as ../shared/DESIGN says, or /home/x/STYLE", names, ROOT / "docs") == [
        "../shared/DESIGN", "/home/x/STYLE"]  # fmt: skip
    assert missing_files("reads /proc/cpuinfo and {out}/verdict.md", names) == []
    # a link relative to the citing file's folder, inside the repository
    docs = ROOT / "docs"
    assert missing_files("[x](../benchmarks/) and [y](../examples/study.toml)", names, docs) == []
    assert missing_files("[y](../examples/none.toml)", names, docs) == ["../examples/none.toml"]
    assert missing_files("e0 / 10, N_td / N_rule, 1/(4 f^2), ~/.cache/td_jax", names) == []
    assert README_FILE.findall("`make` (Makefile), constraints.txt, x.py") == [
        "Makefile", "constraints.txt", "x.py"]  # fmt: skip
    # every form of a section citation
    assert cited_sections(f'({science} "\n   "sections 7-9; {science} 4)') == [
        "7", "8", "9", "7", "9", "4"]  # fmt: skip
    assert cited_sections(f"{science}\n    # section 42") == ["42"]
    assert cited_sections(f"{science} (section 41), {science}: section 43.1") == ["41", "43.1"]
    assert cited_sections(f"section 44 of docs/{science}; sections 45 and 46 in {science}") == [
        "44", "45", "46"]  # fmt: skip
    assert cited_sections("§47, §§ 48-49") == ["47", "48", "49", "48", "49"]
    assert cited_sections(f"[docs/{science}](docs/{science}) sections 7 and 9") == ["7", "9"]
    assert "42" not in headings() and {"7", "9", "10", "7.11"} <= headings()
    assert "11-glossary" in anchors() and "7-the-sample-complexity-protocol" in anchors()
    # the wrong section on a clear topic
    assert wrong_sections(f"scaled to mean 1 and std 1 ({science} section 7).") != []
    assert wrong_sections(f"scaled to mean 1 and std 1 ({science} section 6).") == []
    assert wrong_sections(f"relative to e0 ({science} section 9). Nulls ({science} 9.1)") != []
    assert wrong_sections(f"the Lyapunov equation ({science} sections 7-10)") == []


def python_blocks(path: Path) -> list[str]:
    """The code of each ```python block of a markdown file."""
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.DOTALL)


def test_every_code_block_of_the_docs_is_run_or_checked():
    """python: run below; toml: docs/study_files.md's two examples, which
    tests/test_study_files.py compares with examples/study.toml and loads; sh and bare
    blocks: commands and their output."""
    for path in sorted((ROOT / "docs").glob("*.md")):
        fences = re.findall(r"^```(\S*)", path.read_text(), re.MULTILINE)[::2]
        assert set(fences) <= {"python", "toml", "sh", ""}, (path.name, fences)
        assert fences.count("toml") <= 2 * (path.name == "study_files.md"), path.name
        assert "docs-test: not run" not in path.read_text(), path.name


DOCS_WITH_PYTHON = sorted(p.name for p in (ROOT / "docs").glob("*.md") if python_blocks(p))


def test_the_docs_index_lists_every_document():
    index = (ROOT / "docs" / "README.md").read_text()
    for path in sorted((ROOT / "docs").glob("*.md")):
        if path.name != "README.md":
            assert f"]({path.name})" in index, f"docs/README.md does not link {path.name}"
    assert {"api.md", "SCIENCE.md", "study_files.md"} <= set(DOCS_WITH_PYTHON)


@pytest.mark.parametrize("name", DOCS_WITH_PYTHON)
def test_the_docs_python_examples_run(name, tmp_path, monkeypatch):
    """Each block in order, in one namespace, in an empty directory; a block whose first
    line is ``# file.py`` is written to that file (importable by the next blocks)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    modules = set(sys.modules)
    namespace: dict = {"__name__": f"docs_{name.split('.')[0]}"}
    try:
        for code in python_blocks(ROOT / "docs" / name):
            first = code.splitlines()[0]
            if re.fullmatch(r"# \w+\.py", first):
                (tmp_path / first[2:]).write_text(code)
                # A module of that name imported by an earlier test would shadow it.
                sys.modules.pop(first[2:-3], None)
            else:
                exec(compile(code, f"docs/{name}", "exec"), namespace)  # noqa: S102
        if name == "study_files.md":  # the plug-in of examples/study.toml, as quoted
            from td_jax import UpdateRule

            assert isinstance(namespace["make_rule"](0.5), UpdateRule)
    finally:
        for module in set(sys.modules) - modules:
            if getattr(sys.modules[module], "__file__", "") and str(tmp_path) in str(
                sys.modules[module].__file__
            ):
                del sys.modules[module]
