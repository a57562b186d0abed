"""Smoke test of the benchmark (bench/, docs/performance.md): `python -m bench run --quick`
for every system and scenario, on servers of its own. The report must be complete, and
the relay must not lose, duplicate or reorder anything (the tutorial may lose: that is
what the comparison shows)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parent.parent
LIVE = ("fanout", "rooms", "latency")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-results")
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--quick", "--out", str(out)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    jsons = [p for p in out.glob("*.json") if p.name != "latest.json"]
    assert len(jsons) == 1, list(out.iterdir())
    assert jsons[0].with_suffix(".md").exists()
    data = json.loads(jsons[0].read_text())
    data["_stdout"] = done.stdout
    return data


@pytest.mark.timeout(120)
def test_the_report_is_complete(report):
    assert report["complete"] is True
    runs = report["runs"]
    assert {(r["system"], r["scenario"]) for r in runs} == {
        (system, scenario) for system in config.SYSTEMS for scenario in config.SCENARIOS}
    for run in runs:
        assert run["ok"], run
        if run["scenario"] == "idle":
            assert run["alive"] == run["connections"], run
            assert run["server"]["rss_growth_per_conn_kib"] is not None, run
            assert run["server"]["idle_cpu_ms_per_s"] is not None, run
            continue
        assert run["deliveries"] > 0, run
        assert run["deliveries_per_s"] > 0, run
        assert run["server"]["cpu_us_per_delivery"] is not None, run
        assert run["server"]["rss_peak_mib"] > 0, run
        if run["scenario"] in LIVE or run["mode"] == "live":
            assert all(run["latency_ms"][k] is not None for k in ("p50", "p90", "p99", "max")), run
    # Every figure of every system has its median and, beside the baseline, its ratio.
    for scenario, systems in report["summary"].items():
        assert set(systems) == set(config.SYSTEMS)
        for system, cell in systems.items():
            assert cell["rounds_ok"] == 1 and cell["rounds_failed"] == 0
            assert cell["median"], (scenario, system)
            if system != config.BASELINE:
                assert cell["ratio_to_baseline"], (scenario, system)
    # The table is printed too.
    assert "| system |" in report["_stdout"] and "(×" in report["_stdout"]


@pytest.mark.timeout(120)
def test_the_relay_loses_duplicates_and_reorders_nothing(report):
    for run in report["runs"]:
        if run["system"] != "relay" or run["scenario"] == "idle":
            continue
        assert run["publish_errors"] == 0, run
        assert run["deliveries"] == run["expected_deliveries"] > 0, run
        assert (run["lost"], run["pending"], run["duplicated"], run["reordered"]) == (0, 0, 0, 0), run
        assert run["foreign"] == 0 and run["ts_order_violations"] == 0, run
