"""benchmarks/cluster.py: the cluster section of RESULTS.md is written in place and survives make bench."""

from __future__ import annotations

from benchmarks.cluster import END, START, carry_over, markdown, write_section

FIGURES = {
    "fleet_task_runs": 40,
    "fleet_token_requests": 1,
    "etl_deferrable_slot_seconds": 5.0,
    "etl_polling_slot_seconds": 40.0,
}


def test_the_section_is_appended_then_replaced_in_place(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmarks\n\n## 1. Something\n\ntext\n", encoding="utf-8")
    write_section(results, FIGURES)
    first = results.read_text(encoding="utf-8")
    assert first.startswith("# Benchmarks\n\n## 1. Something\n\ntext\n\n" + START)
    assert "| CARTO token requests per 100 task runs (Redis token cache, cold start) | 2.5 |" in first
    assert "40.0 s (8.0x the deferrable run)" in first
    write_section(results, {**FIGURES, "fleet_token_requests": 2})
    second = results.read_text(encoding="utf-8")
    assert second.count(START) == second.count(END) == 1
    assert "cold start) | 5.0 |" in second


def test_make_bench_keeps_the_section_when_it_rewrites_the_file():
    previous = f"# old report\n\n{START}\ncluster figures\n{END}\n"
    assert carry_over(previous, "# new report\n") == f"# new report\n\n{START}\ncluster figures\n{END}\n"
    assert carry_over("# no section\n", "# new report\n") == "# new report\n"


def test_figures_a_scenario_did_not_reach_show_as_missing():
    text = markdown({})
    assert "| DAG runs per minute end to end (n/a concurrent runs of a 2-task DAG) | n/a |" in text
