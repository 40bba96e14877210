"""`lpgx bench`: the JSON report is valid and complete, bad options fail cleanly, and the
scaling sweep stops for the right reason. The suite runs at `benchmarks.suite.TINY` sizes with
a one-point sweep, so that the meta-gradient step compiles once."""

import json
import math
import time
from pathlib import Path
from typing import Any

import jax
import pytest

from benchmarks import meta_step, suite
from lpgx_cli import bench
from lpgx_cli import main as cli

from .._host_devices import run_on_host_devices

_TIMING = ("compile_s", "median_s", "min_s", "max_s", "spread", "env_steps_per_s")


def _finite_numbers(value: Any, where: str = "") -> None:
    """Every number nested in `value` is finite (booleans and None are allowed)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _finite_numbers(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _finite_numbers(v, f"{where}[{i}]")
    elif isinstance(value, float):
        assert math.isfinite(value), where


def _check_context(record: dict[str, Any]) -> None:
    device, versions = record["device"], record["versions"]
    assert device["backend"] == jax.default_backend()
    assert device["device_count"] == len(jax.devices()) == device["devices_available"]
    assert device["devices"] and device["device_kind"]
    for name in ("python", "jax", "jaxlib", "equinox", "lpgx"):
        assert versions[name] and versions[name] != "not installed", name


@pytest.mark.slow
def test_tiny_suite_json_is_complete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "scaling.png"
    argv = ["bench", "--tiny", "--json", "-", "--png", str(png), "--max-agents", "1"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # stdout is exactly the JSON report
    _finite_numbers(report)
    _check_context(report)
    assert report["tiny"] is True and report["suite"] == "quick"
    assert report["command"].startswith("lpgx bench --tiny")

    items = {r["name"]: r for r in report["items"]}
    assert list(items) == [item.name for item in suite.ITEMS]
    for item in suite.ITEMS:
        record = items[item.name]
        _check_context(record)
        assert item.available, item.name  # every item of the suite is implemented
        assert record["status"] == "ok", record.get("error")
        assert isinstance(record["config"], dict) and record["config"]
        for key in _TIMING:
            assert isinstance(record[key], float), (item.name, key)
        assert 0 < record["min_s"] <= record["median_s"] <= record["max_s"]
        assert record["compile_s"] > 0 and record["env_steps_per_s"] > 0
        assert "peak_memory_bytes" in record and "meta_steps_per_s" in record

    meta = items["meta_gradient_step"]
    c = suite.TINY.meta
    assert meta["config"]["lpg_gru_width"] == c.lpg_gru_width
    assert meta["env_steps_per_call"] == (
        c.num_agents * (c.num_agent_updates + 1) * c.workers * c.rollout_len
    )
    assert meta["meta_steps_per_s"] == pytest.approx(1 / meta["median_s"])
    assert items["env_step"]["meta_steps_per_s"] is None
    assert items["env_step"]["env_steps_per_call"] == (
        suite.TINY.env_num_envs * suite.TINY.env_steps
    )

    assert report["not_yet_available"] == []

    es = items["es_generation"]
    e = suite.TINY.es
    assert e.num_updates is not None
    assert es["config"]["population"] == 2 * e.pairs
    assert es["env_steps_per_call"] == 2 * e.pairs * (
        e.num_updates * e.workers * e.rollout_len + e.eval_episodes * es["config"]["eval_steps"]
    )
    assert es["generations_per_s"] == pytest.approx(1 / es["median_s"])

    plr = items["plr_groove_step"]
    assert plr["config"]["score_functions"] == ["alg_regret", "random"]
    for name in ("alg_regret", "random"):
        assert plr[f"{name}_median_s"] == plr[name]["median_s"] > 0
        assert plr[name]["compile_s"] > 0
    assert plr["ratio_alg_regret_to_random"] == pytest.approx(
        plr["alg_regret_median_s"] / plr["random_median_s"]
    )

    (sweep,) = report["scaling"]
    _check_context(sweep)
    assert sweep["status"] == "ok" and sweep["item"] == "meta_gradient_step"
    assert [p["num_agents"] for p in sweep["points"]] == [1]
    assert "maximum of 1" in sweep["stopped"]
    assert "num_agents" not in sweep["config"]
    # The item and the sweep's one-agent point are one measurement, not two compilations.
    assert sweep["points"][0]["compile_s"] == meta["compile_s"]

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    err = captured.err
    assert "meta-gradient step" in err and "scaling" in err
    assert "ES generation" in err and "PLR/GROOVE step" in err


@pytest.mark.parametrize("devices", ["0", str(len(jax.devices()) + 1)])
def test_bad_devices_fail_cleanly(devices: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "--devices", devices, "--json", "-"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing ran, nothing half-written on stdout
    err = " ".join(captured.err.split())
    assert f"--devices {devices}" in err and f"from 1 to {len(jax.devices())}" in err


def test_bad_options_fail_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def err() -> str:
        return " ".join(capsys.readouterr().err.split())

    assert bench.main(["--png", str(tmp_path / "missing" / "x.png")]) == 2
    assert "does not exist" in err()
    assert bench.main(["--max-agents", "0"]) == 2
    assert "--max-agents must be at least 1" in err()
    assert bench.main(["--suite", "nope"]) == 2
    capsys.readouterr()
    # The meta-step benchmark checks its config before anything compiles.
    assert meta_step.main(["--num-agents", "3", "--num-mini-batches", "2"]) == 2
    assert "not divisible" in err()


def _fake_item(points: dict[int, tuple[float, float]], oom_at: int | None = None) -> suite.Item:
    """An item whose sweep point for ``n`` agents compiles in ``points[n][0]`` s and runs in
    ``points[n][1]`` s (one warm-up, one repeat); no JAX involved."""

    def point(ctx: suite.Context, n: int) -> dict[str, Any]:
        if n == oom_at:
            raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating")
        compile_s, median_s = points[n]
        return {
            "config": {"num_agents": n, "x": 1},
            "compile_s": compile_s,
            "median_s": median_s,
            "min_s": median_s,
            "max_s": median_s,
            "times_s": [median_s],
            "wall_s": compile_s + 2 * median_s,
        }

    return suite.Item("fake", "fake", "a fake", run=lambda ctx: {}, sweep=point)


def _sweep(
    item: suite.Item,
    max_agents: int,
    limit: float,
    budget: float | None = None,
    spent: float = 0,
    measured: tuple[int, ...] = (),
) -> dict[str, Any]:
    sizes = suite.Sizes(sweep_max_agents=max_agents, sweep_time_limit_s=limit, time_budget_s=budget)
    ctx = suite.Context(sizes=sizes, start=time.perf_counter() - spent)
    ctx.points.update({(item.name, n): {} for n in measured})  # e.g. the item's own point
    return suite.run_sweep(item, ctx)


def test_sweep_stops_at_the_maximum_the_time_limit_or_out_of_memory() -> None:
    fast = {n: (1.0, 0.1) for n in (1, 2, 4, 8, 16)}
    out = _sweep(_fake_item(fast), max_agents=10, limit=100)
    assert [p["num_agents"] for p in out["points"]] == [1, 2, 4, 8]
    assert "maximum of 10" in out["stopped"] and out["config"] == {"x": 1}

    out = _sweep(_fake_item({1: (1.0, 0.1), 2: (30.0, 0.1)}), max_agents=64, limit=20)
    assert [p["num_agents"] for p in out["points"]] == [1, 2]
    assert "2 agents took 30 s" in out["stopped"]

    # 2 agents took 9 + 2 × 3 = 15 s; 4 agents are predicted 9 + 2 calls × 2 × 3 = 21 s > 18.
    out = _sweep(_fake_item({1: (1.0, 0.1), 2: (9.0, 3.0)}), max_agents=64, limit=18)
    assert [p["num_agents"] for p in out["points"]] == [1, 2]
    assert "4 agents predicted to take 21 s" in out["stopped"]

    # 90 s of a 110 s budget spent: 2 agents (predicted 9 + 2 × 4 = 17 s) fit, 4 agents
    # (predicted 17 + 2 × 8 = 33 s) do not; 8 agents were measured already and come free.
    points = {1: (1.0, 4.0), 2: (1.0, 8.0), 8: (1.0, 30.0)}
    out = _sweep(_fake_item(points), 16, 100, budget=110, spent=90, measured=(8,))
    assert [p["num_agents"] for p in out["points"]] == [1, 2, 8]
    assert out["stopped"].startswith("4 agents predicted to take 33 s, past the suite's 110 s")

    out = _sweep(_fake_item(fast, oom_at=4), max_agents=64, limit=100)
    assert [p["num_agents"] for p in out["points"]] == [1, 2]
    assert out["stopped"].startswith("out of memory at 4 agents: RESOURCE_EXHAUSTED")


def test_memory_errors_are_recognised() -> None:
    assert suite.is_memory_error(MemoryError())
    assert suite.is_memory_error(jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: oom"))
    assert not suite.is_memory_error(jax.errors.JaxRuntimeError("INTERNAL: something else"))
    assert not suite.is_memory_error(ValueError("out of memory"))


SHARDED_SCRIPT = """
from dataclasses import replace
from benchmarks import suite

assert len(jax.devices()) == 2, jax.devices()
t = suite.TINY
sizes = replace(
    t, meta=replace(t.meta, num_agents=2), es=replace(t.es, pairs=2), sweep_max_agents=2
)
try:
    suite.check_sizes(t, 2)  # one agent of the meta-step, one ES pair: cannot split over 2
except ValueError as err:
    assert "1 antithetic pairs (es_generation)" in str(err) and "--devices 1" in str(err), err
else:
    raise AssertionError("indivisible sizes were accepted")
report = suite.run_suite(sizes, tiny=True, device_count=2)
for record in report["items"]:
    assert record["status"] == "ok", (record["name"], record.get("error"))
    assert record["device"]["device_count"] == 2 and record["device"]["sharded"], record
(sweep,) = report["scaling"]
assert [p["num_agents"] for p in sweep["points"]] == [2], sweep  # starts at the devices
print("SHARDED-BENCH-OK")
"""


@pytest.mark.slow
def test_suite_runs_split_over_two_host_devices() -> None:
    """``--devices 2``: every item's population is split over two (forced host) devices;
    sizes that do not divide fail before compiling, naming a device count that works."""
    assert "SHARDED-BENCH-OK" in run_on_host_devices(SHARDED_SCRIPT, 2)
