"""lpgx's default XLA flags (`lpgx._xla`, added by `lpgx.enable_speedups`): added before a
backend starts, never over the user's own options, off with ``LPGX_XLA_DEFAULTS=0``; and a loop
compiled with them gives the results it gives without them."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lpgx import _jax_private, _xla


@pytest.fixture
def no_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_jax_private, "backends_initialised", lambda: False)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.delenv("LPGX_XLA_DEFAULTS", raising=False)


@pytest.mark.usefixtures("no_backend")
def test_the_defaults_are_added_once_and_keep_other_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    assert _xla.apply_defaults() == (_xla.default_flags(), "added")
    flags = os.environ["XLA_FLAGS"].split()
    assert flags == ["--xla_force_host_platform_device_count=2", *_xla.default_flags()]
    assert _xla.apply_defaults() == ((), "present")  # already there: not added twice
    assert os.environ["XLA_FLAGS"].split() == flags


@pytest.mark.usefixtures("no_backend")
def test_the_users_own_backend_options_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_extra_options=xla_cpu_disable_loop_unrolling")
    assert _xla.apply_defaults() == ((), "present")
    assert os.environ["XLA_FLAGS"] == "--xla_backend_extra_options=xla_cpu_disable_loop_unrolling"


@pytest.mark.usefixtures("no_backend")
def test_off_when_asked_or_too_late(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LPGX_XLA_DEFAULTS", "0")
    assert _xla.apply_defaults() == ((), "off") and "XLA_FLAGS" not in os.environ
    monkeypatch.delenv("LPGX_XLA_DEFAULTS")
    monkeypatch.setattr(_jax_private, "backends_initialised", lambda: True)
    assert _xla.apply_defaults() == ((), "too late") and "XLA_FLAGS" not in os.environ
    # A JAX whose internals give no way to tell: XLA_FLAGS is left alone.
    monkeypatch.setattr(_jax_private, "backends_initialised", lambda: None)
    assert _xla.apply_defaults() == ((), "unknown") and "XLA_FLAGS" not in os.environ


def test_the_backend_check_sees_this_process_backend() -> None:
    """The private check (`lpgx._jax_private`) answers for this JAX: the suite has run JAX by
    the time this runs, or starts it here."""
    import jax

    jax.numpy.zeros(()).block_until_ready()
    assert _jax_private.backends_initialised() is True


def test_llvm_options_only_for_checked_jaxlib_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = _xla.default_flags()[0]
    assert extra.startswith("--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=")
    monkeypatch.setattr(_xla, "_jaxlib_version", lambda: (0, 10))
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    assert _xla.codegen_options_apply()
    assert _xla.default_flags()[0].endswith("," + ",".join(_xla.CODEGEN_OPTIONS))
    monkeypatch.setenv("JAX_PLATFORMS", "cuda,cpu")  # XLA's GPU backend reads them too
    assert not _xla.codegen_options_apply()
    assert "-disable-lsr" not in _xla.default_flags()[0]
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setattr(_xla, "_jaxlib_version", lambda: _xla.CODEGEN_VERIFIED_BELOW)
    assert not _xla.codegen_options_apply()  # an unknown LLVM option would stop the process
    monkeypatch.setattr(_xla, "_jaxlib_version", lambda: None)
    assert not _xla.codegen_options_apply()


_GRID_WORLD = """
import sys
import lpgx
lpgx.enable_speedups()  # the XLA options unless LPGX_XLA_DEFAULTS=0
import jax, jax.numpy as jnp, numpy as np
from lpgx.compose import make_tasks

tasks = make_tasks("all_shortlife")
env = tasks.env()
n = 4

def run(key):
    k_levels, k_reset, k_run = jax.random.split(key, 3)
    levels = jax.vmap(tasks.sample)(jax.random.split(k_levels, n)).level
    state, obs = jax.vmap(env.reset)(jax.random.split(k_reset, n), levels)

    def body(state, key):
        k_action, k_step = jax.random.split(key)
        actions = jax.random.randint(k_action, (n,), 0, env.num_actions, dtype=jnp.int32)
        step = jax.vmap(env.step)
        state, obs, reward, done = step(jax.random.split(k_step, n), levels, state, actions)
        return state, (obs, reward, done)

    return jax.lax.scan(body, state, jax.random.split(k_run, 200))[1]

compiled = jax.jit(run).lower(jax.random.key(3)).compile()
out = compiled(jax.random.key(3))
print("one kernel" if "xla_cpu_small_call" in compiled.as_text() else "kernels", flush=True)

# Floating point through loops both ways: a GRU's gradient over 40 steps of 16 sequences.
import equinox as eqx

def loss(cell, xs):
    def step(h, x):
        h = jax.vmap(cell)(x, h)
        return h, jnp.sum(jnp.tanh(h) * x[:, :1])
    _, ys = jax.lax.scan(step, jnp.zeros((16, 24)), xs)
    return jnp.sum(ys**2) / 1000.0

cell = eqx.nn.GRUCell(5, 24, key=jax.random.key(0))
xs = jax.random.normal(jax.random.key(1), (40, 16, 5))
grads = eqx.filter_jit(eqx.filter_grad(loss))(cell, xs)
flat = [np.ravel(np.asarray(x)).astype(np.float64) for x in jax.tree.leaves((out, grads))]
np.save(sys.argv[1], np.concatenate(flat))
"""


@pytest.mark.slow
def test_the_defaults_give_the_same_results(tmp_path: Path) -> None:
    """200 steps of 4 grid worlds in a scan (small enough to become one kernel with the
    defaults) and a GRU's gradient through a scan: observations, rewards, ends and gradients
    equal to the last bit with the defaults (the small-loop threshold, and on a CPU-only install
    LLVM's `CODEGEN_OPTIONS`) off."""
    outs = []
    for setting in ("1", "0"):
        path = tmp_path / f"{setting}.npy"
        env = {**os.environ, "LPGX_XLA_DEFAULTS": setting}
        env.pop("XLA_FLAGS", None)
        proc = subprocess.run(
            [sys.executable, "-c", _GRID_WORLD, str(path)], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.strip().splitlines()[-1] == (
            "one kernel" if setting == "1" else "kernels"
        )
        outs.append(np.load(path))
    np.testing.assert_array_equal(outs[0], outs[1])
