"""Run a test script in a fresh Python process that sees several (forced) CPU devices.

The number of host devices is fixed when JAX starts, so multi-device tests run in a subprocess.
The script gets the suite's settings: strict dtype and rank promotion, the jaxtyping import
hook with beartype on `lpgx` (`lpgx`, `lpgx.sharding` and `lpgx.train` are imported by
this preamble), and warnings as errors.
"""

import os
import subprocess
import sys

PREAMBLE = """
import jax
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")
from jaxtyping import install_import_hook
with install_import_hook("lpgx", "beartype.beartype"):
    import lpgx
    import lpgx.sharding
    import lpgx.train
lpgx.enable_speedups()  # as the test suite and the CLI run (tests/conftest.py)
"""


def run_on_host_devices(
    script: str, devices: int, timeout: float = 900, args: list[str] | None = None
) -> str:
    """Run `PREAMBLE` + `script` (with `args` in ``sys.argv[1:]``) with `devices` host
    devices; fail the test (with the process's output) unless it exits 0. Returns its standard
    output."""
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", PREAMBLE + script, *(args or [])],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout
