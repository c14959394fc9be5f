"""benchmarks/run.py's report files: the marker blocks of docs/benchmarks.md and README.md.

No benchmark runs here: the sections are made up, and ``main`` runs with fake benchmarks and a fake
emulator, writing only into ``tmp_path``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from benchmarks import run
from benchmarks.common import Section, replace_block, table
from benchmarks.physical import NUMBER as PHYSICAL

START, END = "<!-- x:start -->", "<!-- x:end -->"
PHYSICAL_TABLE = table(
    ["Figure", "This project", "Baseline", "Ratio", "Goal"],
    [
        ["cold burst p50, N=64", "0.512 s", "1.02 s (carto-auth 0.2.0)", "0.50", "<= 1.0"],
        [
            "triggerer RSS, 1000 triggers",
            "180 MB",
            "100 MB (one shared httpx client)",
            "1.80 (over)",
            "<= 1.5",
        ],
    ],
)
ENVIRONMENT = "2026-03-04 05:06 UTC · Test CPU, 2 cores · Python 3.12.1 · airflow-provider-carto 1.0"
README_TEXT = (
    "# airflow-provider-carto\n\n```bash\nmake demo\nmake test\n```\n\n## Performance\n\n"
    f"The table.\n\n{run.PHYSICAL_START}\n(written by `make bench`)\n{run.PHYSICAL_END}\n\n## Links\n\n- a link\n"
)
DOCS_TEXT = f"# Benchmarks\n\nIntro.\n\n{run.HEADLINE_START}\n- old headline\n{run.HEADLINE_END}\n\nMore.\n"


def physical_section(**changes: object) -> Section:
    fields: dict[str, object] = {
        "number": PHYSICAL,
        "title": "Physical limits",
        "method": "How it was measured.",
        "table": PHYSICAL_TABLE,
        "notes": ["Triggerer details: ..."],
        "environment": ENVIRONMENT,
    }
    fields.update(changes)
    return Section(**fields)  # type: ignore[arg-type]


# replace_block


def test_replace_block_replaces_only_between_the_markers(tmp_path: Path) -> None:
    path = tmp_path / "page.md"
    path.write_text(f"before\n{START}\nold\nlines\n{END}\nafter\n", encoding="utf-8")
    assert replace_block(path, START, END, "new body") is True
    assert path.read_text(encoding="utf-8") == f"before\n{START}\nnew body\n{END}\nafter\n"


def test_replace_block_keeps_the_text_around_and_a_second_block(tmp_path: Path) -> None:
    path = tmp_path / "page.md"
    other = "<!-- y:start -->\nkeep me\n<!-- y:end -->"
    original = f"# Title\n\nintro {START}old{END} tail\n\n{other}\n\n{START}\nsecond\n{END}\n"
    path.write_text(original, encoding="utf-8")
    assert replace_block(path, START, END, r"a \1 backslash and $x")
    text = path.read_text(encoding="utf-8")
    assert text == (
        f"# Title\n\nintro {START}\na \\1 backslash and $x\n{END} tail\n\n{other}\n\n{START}\nsecond\n{END}\n"
    )


@pytest.mark.parametrize(
    "original",
    [
        "no markers at all\n",
        f"only the start {START}\nbody\n",
        f"only the end\nbody\n{END}\n",
        f"{END}\n{START}\n",
    ],
)
def test_replace_block_without_its_markers_returns_false_and_leaves_the_file(
    tmp_path: Path, original: str
) -> None:
    path = tmp_path / "page.md"
    path.write_bytes(original.encode("utf-8"))
    before = path.stat().st_mtime_ns
    assert replace_block(path, START, END, "new body") is False
    assert path.read_bytes() == original.encode("utf-8")
    assert path.stat().st_mtime_ns == before


def test_replace_block_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "page.md"
    path.write_text(f"a\n{START}\n{END}\nb\n", encoding="utf-8")
    assert replace_block(path, START, END, "| x |\n|---|\n| 1 |")
    once = path.read_text(encoding="utf-8")
    assert replace_block(path, START, END, "| x |\n|---|\n| 1 |")
    assert path.read_text(encoding="utf-8") == once == f"a\n{START}\n| x |\n|---|\n| 1 |\n{END}\nb\n"


# docs/benchmarks.md's headline (the same output as before replace_block)


def test_the_headline_block_gets_every_section_headline_as_a_list(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text(DOCS_TEXT, encoding="utf-8")
    sections = [
        Section(1, "One", "m", headline=["first **1**", "second"]),
        Section(2, "Two", "m"),
        Section(3, "Three", "m", headline=["third"]),
    ]
    assert run.update_headline(sections, page)
    assert page.read_text(encoding="utf-8") == (
        f"# Benchmarks\n\nIntro.\n\n{run.HEADLINE_START}\n- first **1**\n- second\n- third\n"
        f"{run.HEADLINE_END}\n\nMore.\n"
    )


def test_the_real_docs_page_and_readme_have_their_markers() -> None:
    docs = run.DOCS_PAGE.read_text(encoding="utf-8")
    readme = run.README.read_text(encoding="utf-8")
    assert docs.count(run.HEADLINE_START) == docs.count(run.HEADLINE_END) == 1
    assert readme.count(run.PHYSICAL_START) == readme.count(run.PHYSICAL_END) == 1
    performance = readme.index("## Performance")
    assert performance < readme.index(run.PHYSICAL_START) < readme.index(run.PHYSICAL_END)
    assert readme.index(run.PHYSICAL_END) < readme.index("## Links")
    assert readme.startswith("# airflow-provider-carto\n\n```bash\nmake demo ")


# README.md's physical limits table


def test_the_readme_gets_the_physical_table_and_its_run_line(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README_TEXT, encoding="utf-8")
    assert run.update_performance(physical_section(), readme)
    text = readme.read_text(encoding="utf-8")
    block = text[text.index(run.PHYSICAL_START) : text.index(run.PHYSICAL_END) + len(run.PHYSICAL_END)]
    assert block == (
        f"{run.PHYSICAL_START}\n{PHYSICAL_TABLE}\n\nLast `make bench` run: {ENVIRONMENT}.\n{run.PHYSICAL_END}"
    )
    assert "(written by `make bench`)" not in text
    assert "How it was measured." not in text and "Triggerer details" not in text  # the table only
    assert "<sub>" not in text  # plain Markdown for PyPI
    assert text.startswith("# airflow-provider-carto\n\n```bash\nmake demo\nmake test\n```\n\n## Performance")
    assert text.endswith(f"{run.PHYSICAL_END}\n\n## Links\n\n- a link\n")
    assert run.update_performance(physical_section(), readme)
    assert readme.read_text(encoding="utf-8") == text


def test_the_readme_without_markers_is_left_alone(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# airflow-provider-carto\n\n## Links\n", encoding="utf-8")
    assert run.update_performance(physical_section(), readme) is False
    assert readme.read_text(encoding="utf-8") == "# airflow-provider-carto\n\n## Links\n"


def test_the_physical_section_is_found_by_its_number_and_needs_a_table() -> None:
    other = Section(1, "Cold burst", "m", table="| a |\n|---|\n| 1 |")
    ours = physical_section()
    assert run.physical_section([other, ours]) is ours
    assert run.physical_section([other]) is None
    assert run.physical_section([other, physical_section(table="")]) is None


# which runs write files


def args(*argv: str) -> argparse.Namespace:
    return run.parse_args(list(argv))


@pytest.mark.parametrize(
    ("argv", "chosen", "expected"),
    [
        ((), sorted(run.BENCHMARKS), True),
        (("--keep",), sorted(run.BENCHMARKS), True),
        (("--quick",), sorted(run.BENCHMARKS), False),
        (("--no-write",), sorted(run.BENCHMARKS), False),
        (("--only", "8"), [8], False),
        (("--only", "1,2,3,4,5,6,7"), [1, 2, 3, 4, 5, 6, 7], False),
    ],
)
def test_only_a_full_run_writes_files(argv: tuple[str, ...], chosen: list[int], expected: bool) -> None:
    assert run.writes_files(args(*argv), chosen) is expected


class FakeEmulator:
    """What ``main`` uses of the emulator before the (fake) benchmarks run."""

    def __enter__(self) -> FakeEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set_latency(self, route: str, seconds: float) -> None:
        pass

    def credentials(self) -> dict[str, str]:
        return {"client_id": "id", "client_secret": "secret"}


@pytest.fixture
def fake_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """``main`` with fake benchmarks (section 8 returns a physical limits table) and every file in tmp."""
    files = {
        "results": tmp_path / "RESULTS.md",
        "docs": tmp_path / "benchmarks.md",
        "readme": tmp_path / "README.md",
    }
    files["results"].write_text("# old results\n", encoding="utf-8")
    files["docs"].write_text(DOCS_TEXT, encoding="utf-8")
    files["readme"].write_text(README_TEXT, encoding="utf-8")

    def fake(number: int):
        def benchmark(ctx: object) -> Section:
            if number == PHYSICAL:
                return physical_section()
            return Section(
                number, f"Fake {number}", "m", table="| a |\n|---|\n| 1 |", headline=[f"fake {number}"]
            )

        benchmark.__name__ = f"fake_{number}"
        return benchmark

    monkeypatch.setattr(run, "BENCHMARKS", {number: fake(number) for number in range(1, 9)})
    monkeypatch.setattr(run, "RESULTS", files["results"])
    monkeypatch.setattr(run, "DOCS_PAGE", files["docs"])
    monkeypatch.setattr(run, "README", files["readme"])
    monkeypatch.setattr(run, "WORK", tmp_path / "work")
    monkeypatch.setattr(run, "precompile", lambda: None)
    monkeypatch.setattr("carto_provider.testing.emulator.CartoEmulator", FakeEmulator)
    return files


def test_a_full_run_writes_the_readme_table_and_the_docs_headline(fake_run: dict[str, Path]) -> None:
    assert run.main([]) == 0
    readme = fake_run["readme"].read_text(encoding="utf-8")
    assert f"{run.PHYSICAL_START}\n{PHYSICAL_TABLE}\n\nLast `make bench` run: {ENVIRONMENT}.\n" in readme
    docs = fake_run["docs"].read_text(encoding="utf-8")
    assert (
        f"{run.HEADLINE_START}\n" + "".join(f"- fake {n}\n" for n in range(1, 8)) + run.HEADLINE_END in docs
    )
    assert "## 8. Physical limits" in fake_run["results"].read_text(encoding="utf-8")


@pytest.mark.parametrize("argv", [["--quick"], ["--only", "8"], ["--no-write"], ["--only", "1,2"]])
def test_a_quick_or_partial_run_leaves_every_file_untouched(
    fake_run: dict[str, Path], argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = {name: path.read_bytes() for name, path in fake_run.items()}
    assert run.main(argv) == 0
    assert {name: path.read_bytes() for name, path in fake_run.items()} == before
    assert "left as they were" in capsys.readouterr().out


def test_a_full_run_warns_when_the_readme_has_no_markers(
    fake_run: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_run["readme"].write_text("# airflow-provider-carto\n", encoding="utf-8")
    assert run.main([]) == 0
    assert fake_run["readme"].read_text(encoding="utf-8") == "# airflow-provider-carto\n"
    err = capsys.readouterr().err
    assert f"has no {run.PHYSICAL_START} block; physical limits table not copied" in err
    assert "- fake 1\n" in fake_run["docs"].read_text(encoding="utf-8")  # the headline still written
