"""Nothing happens at ``import lpgx``: ``XLA_FLAGS`` is left as it was and nothing is registered
with JAX; `lpgx.enable_speedups` then turns lpgx's CPU speed-ups on, and says what it did."""

import json
import os
import subprocess
import sys

import jax
import pytest

import lpgx
from lpgx import _xla
from lpgx.speedups import Speedups, SpeedupsWarning

# In a fresh process: JAX's lowering tables (every rule of every primitive JAX itself registers)
# and `jax.config` before and after `import lpgx`, whether a random draw's CPU program keeps
# JAX's rolled Threefry loop, and all of it again after `lpgx.enable_speedups()`.
_SCRIPT = """
import json, os, sys
import jax, jax.numpy as jnp
from jax._src import xla_bridge
from jax._src.interpreters import mlir
from jax._src.random import threefry2x32


def tables():
    common = {p: e for p, e in mlir._lowerings.items()}
    specific = {(k, p): e for k, rules in mlir._platform_specific_lowerings.items()
                for p, e in rules.items()}
    return common, specific


def rolled():
    # A fresh function each time, so that nothing lowered before is reused.
    text = jax.jit(lambda k: jax.random.uniform(k, (3,))).lower(jax.random.key(0)).compile()
    return " while(" in (text.as_text() or "")


before_tables = tables()
before_config = {k: repr(v) for k, v in jax.config.values.items()}
import lpgx
import lpgx.train
import lpgx_cli.train
after_tables = tables()
# Every rule registered before lpgx was imported is still the one registered, for every platform.
changed = [repr(p) for table, after in zip(before_tables, after_tables)
           for p, e in table.items() if after.get(p) is not e]
record = {
    "flags_after_import": os.environ.get("XLA_FLAGS"),
    "changed_rules": changed,
    "config_changed": {k: repr(v) for k, v in jax.config.values.items()} != before_config,
    "backend_started": xla_bridge.backends_are_initialized(),
    "threefry_cpu_rule_is_jaxs": (
        mlir._platform_specific_lowerings["cpu"][threefry2x32.threefry2x32_p].rule
        is threefry2x32._threefry2x32_cpu_lowering_rule
    ),
}
applied = lpgx.enable_speedups()
record.update(
    applied=[list(applied.xla_flags), applied.xla_status, applied.straight_line_threefry],
    flags_after_enable=os.environ.get("XLA_FLAGS"),
    rolled_after_enable=rolled(),
)
print("RECORD " + json.dumps(record))
"""

# `import lpgx` alone, then a random draw: JAX's rolled loop is still what CPU programs get.
_PLAIN = """
import jax
import lpgx
text = jax.jit(lambda k: jax.random.uniform(k, (3,))).lower(jax.random.key(0)).compile()
print("rolled" if " while(" in (text.as_text() or "") else "straight")
"""


def _run(script: str, xla_flags: str | None, **extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_FLAGS", "LPGX_"))}
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    env.update(extra)
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _record(xla_flags: str | None, **extra: str) -> dict[str, object]:
    (line,) = [x for x in _run(_SCRIPT, xla_flags, **extra).splitlines() if x.startswith("RECORD")]
    return json.loads(line.removeprefix("RECORD "))


@pytest.mark.parametrize("xla_flags", [None, "--xla_force_host_platform_device_count=2"])
def test_import_changes_nothing_and_enable_speedups_applies_them(xla_flags: str | None) -> None:
    record = _record(xla_flags)
    assert record["flags_after_import"] == xla_flags
    assert record["changed_rules"] == []
    assert record["config_changed"] is False
    assert record["backend_started"] is False  # so the speed-ups could still apply
    assert record["threefry_cpu_rule_is_jaxs"] is True
    defaults = list(_xla.default_flags())
    assert record["applied"] == [defaults, "added", True]
    assert record["flags_after_enable"] == " ".join(
        [*([xla_flags] if xla_flags else []), *defaults]
    )
    if jax.default_backend() == "cpu":
        assert record["rolled_after_enable"] is False


def test_a_program_compiled_after_import_alone_keeps_jaxs_lowering() -> None:
    if jax.default_backend() == "cpu":  # elsewhere JAX's own lowering is a straight line
        assert _run(_PLAIN, None).split() == ["rolled"]


def test_the_environment_still_turns_each_speed_up_off() -> None:
    record = _record(None, LPGX_XLA_DEFAULTS="0", LPGX_ROLLED_THREEFRY="1")
    assert record["applied"] == [[], "off", False]
    assert record["flags_after_enable"] is None
    if jax.default_backend() == "cpu":
        assert record["rolled_after_enable"] is True


def test_the_users_backend_options_win() -> None:
    mine = "--xla_backend_extra_options=xla_cpu_disable_loop_unrolling"
    record = _record(mine)
    assert record["applied"] == [[], "present", True]
    assert record["flags_after_enable"] == mine


def test_too_late_for_the_xla_options_warns_and_still_does_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In this process JAX has started its backend (the suite enabled the speed-ups first):
    without lpgx's options in ``XLA_FLAGS``, a call warns what to do, leaves ``XLA_FLAGS``
    alone, and still registers the straight-line Threefry lowering."""
    jax.numpy.zeros(()).block_until_ready()
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.delenv("LPGX_XLA_DEFAULTS", raising=False)
    monkeypatch.delenv("LPGX_ROLLED_THREEFRY", raising=False)
    with pytest.warns(SpeedupsWarning, match="before the first JAX computation"):
        applied = lpgx.enable_speedups()
    assert applied == Speedups((), "too late", True)
    assert "XLA_FLAGS" not in os.environ
