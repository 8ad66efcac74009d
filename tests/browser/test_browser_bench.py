"""The Bench tab: a benchmark run's table and figure, and each sample one click away from its session."""

from __future__ import annotations

from playwright.sync_api import expect

from cli import main
from conftest import Studio


def test_a_bench_runs_table_figure_and_samples_open_their_sessions(app_factory, page, shot, tmp_path):
    server = app_factory("bench")
    argv = ["bench", "--methods", "single,pass@2", "--seeds", "0", "--families", "blocks", "--difficulties", "easy",
            "--out", str(tmp_path / "out"), "--data-dir", str(server.data_dir), "--name", "tiny-run", "--no-progress"]
    assert main(argv) == 0
    studio = Studio(page, server.url)
    studio.open()
    studio.tab("Bench")
    table = studio.el("bench-table")
    expect(table.locator('tr[data-method="pass@2"][data-group="all"]')).to_be_visible(timeout=20_000)
    expect(table).to_contain_text("tiny-run")
    expect(table.locator(".simulated-label")).to_be_visible()
    expect(studio.el("bench-figure").locator(".js-plotly-plot .main-svg").first).to_be_visible(timeout=20_000)
    page.wait_for_function("() => document.querySelectorAll('#bench-samples [role=row].virtual-row').length >= 2")
    rows = studio.table("bench-samples")
    pick = next(row for row in rows if row[1] == "pass@2")
    shot(page, "bench-tab")

    page.locator("#bench-samples [role=row].virtual-row").filter(has_text=pick[0]).first.locator("[role=gridcell]").nth(1).click()
    page.wait_for_function("(s) => document.querySelector('#session-id textarea').value === s", arg=pick[0])
    root = page.locator(f'#timeline .timeline-root[data-session="{pick[0]}"]')
    expect(root).to_be_visible(timeout=20_000)
    expect(root.locator(".selection")).to_contain_text("picked attempt")
    expect(root).to_contain_text("not verified: Pass@2 has no verifier")
    shot(page, "sample-opened")
