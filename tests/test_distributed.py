"""Several processes, one run (`jax.distributed` over gloo on CPU): `lpgx train
--coordinator HOST:PORT --num-processes 2 --process-id I` gives the metrics of one process on
as many devices, only process 0 writes, a checkpoint resumes on one process, and the errors
a user can make at start are named.

The processes are launched once for the module (they dominate its time): two processes with 2
host devices each run, in one `jax.distributed` session, a tiny meta-gradient run, a tiny ES
run and a run whose processes disagree on ``--num-agents``; then one process with 4 host
devices runs the meta-gradient run uninterrupted and resumes the pair's from its checkpoint;
the ES run is compared with the golden metrics of one process (`tests/test_golden.py`). A
process pointed at a coordinator that does not listen runs beside the pair.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ._host_devices import PREAMBLE, run_on_host_devices

MG = [
    "--env-mode", "all_shortlife", "--seed", "6", "--num-agents", "4", "--num-mini-batches", "1",
    "--env-workers", "2", "--train-rollout-len", "4", "--num-agent-updates", "1",
    "--lpg-gru-width", "8", "--lpg-target-width", "4", "--chunk-size", "2",
    "--checkpoint-every", "2", "--no-evaluate",
]  # fmt: skip
# The ES run of tests/test_golden.py (4 antithetic pairs, 8 candidates in 2 mini-batches), as
# one process on one device gave it (test_golden.py checks that it still does, and
# test_sharding.py that 8 devices give what 1 does).
GOLDEN_ES = json.loads((Path(__file__).parent / "data" / "golden_metrics.json").read_text())["es"]
ES = [*GOLDEN_ES["flags"], "--no-evaluate"]
DEAD_TIMEOUT_S = 3
# Each process of the pair records every file it opens for writing (or creates, or renames)
# under the test's directory, to show that process 1 writes nothing.
PAIR = textwrap.dedent(
    """
    import io, json, os, sys
    from lpgx_cli.main import main as cli
    root, pid, port = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    writes = []
    def spy(real, is_write):
        def call(path, *args, **kwargs):
            named = isinstance(path, (str, bytes, os.PathLike))  # not a file descriptor
            name = os.path.abspath(os.fsdecode(path)) if named else ""
            if name.startswith(root) and is_write(args, kwargs):
                writes.append(name)
            return real(path, *args, **kwargs)
        return call
    text_mode = lambda a, k: any(c in (a[0] if a else k.get("mode", "r")) for c in "wax+")
    flags_mode = lambda a, k: bool((a[0] if a else k["flags"]) & (os.O_WRONLY | os.O_RDWR))
    io.open = spy(io.open, text_mode)
    import builtins
    builtins.open = spy(builtins.open, text_mode)
    os.open = spy(os.open, flags_mode)
    os.replace = spy(os.replace, lambda a, k: True)
    os.mkdir = spy(os.mkdir, lambda a, k: True)
    dist = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(pid),
            "--coordinator-timeout", "60"]
    mg, es = json.loads(sys.argv[4]), json.loads(sys.argv[5])
    codes = [
        cli(["train", *mg, "--train-steps", "2", "--out", f"{root}/mg", *dist]),
        cli(["train", *es, "--out", f"{root}/es", *dist]),
        cli(["train", *mg, "--num-agents", str(4 * (pid + 1)), "--out", f"{root}/bad", *dist]),
    ]
    print("RESULT " + json.dumps({"codes": codes, "writes": writes}))
    """
)
# The resumed run compiles the program the uninterrupted one did: JAX's persistent cache (a
# directory of the test's) gives it back instead of compiling it twice.
REFERENCE = textwrap.dedent(
    """
    import json, sys, time
    jax.config.update("jax_compilation_cache_dir", sys.argv[1] + "/jax-cache")
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    from lpgx_cli.main import main as cli
    root, mg = sys.argv[1], json.loads(sys.argv[2])
    codes, seconds = [], []
    for args in (
        ["train", *mg, "--train-steps", "4", "--out", f"{root}/ref_mg"],
        ["train", "--out", f"{root}/mg", "--resume", "--train-steps", "4", "--no-evaluate"],
    ):
        start = time.perf_counter()
        codes.append(cli(args))
        seconds.append(time.perf_counter() - start)
    print("RESULT " + json.dumps({"codes": codes, "seconds": seconds}))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(devices: int) -> dict[str, str]:
    return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


def _result(stdout: str) -> dict[str, object]:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, stdout
    return json.loads(lines[-1].removeprefix("RESULT "))


@dataclass
class Runs:
    root: Path
    pair: list[dict[str, object]]
    pair_err: list[str]
    reference: dict[str, object]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    root = tmp_path_factory.mktemp("distributed")
    port = _free_port()
    flags = [json.dumps(MG), json.dumps(ES)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-W",
                "error",
                "-c",
                PREAMBLE + PAIR,
                str(root),
                str(i),
                str(port),
                *flags,
            ],
            env=_env(2),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        outs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, out + err
    reference = _result(
        run_on_host_devices(REFERENCE, 4, timeout=600, args=[str(root), json.dumps(MG)])
    )
    yield Runs(
        root,
        [_result(out) for out, _ in outs],
        [err for _, err in outs],
        reference,
    )


def _metrics(path: Path) -> list[dict[str, float]]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for r in records:
        r.pop("wall_s")
    return records


def _assert_close(got: list[dict[str, float]], want: list[dict[str, float]], rtol: float) -> None:
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for g, w in zip(got, want, strict=True):
        assert sorted(g) == sorted(w)
        for name, value in w.items():
            np.testing.assert_allclose(g[name], value, rtol=rtol, atol=1e-6, err_msg=name)


@pytest.mark.slow
def test_two_processes_match_one_process_on_as_many_devices(runs: Runs) -> None:
    assert [r["codes"][:2] for r in runs.pair] == [[0, 0], [0, 0]]  # type: ignore[index]
    assert runs.reference["codes"] == [0, 0]
    # rtol as in tests/test_sharding.py: the meta-gradient's mean over agents is reduced in
    # another order across processes (gloo) than within one.
    mg = _metrics(runs.root / "mg" / "metrics.jsonl")
    ref = _metrics(runs.root / "ref_mg" / "metrics.jsonl")
    # The resumed run rewrote metrics.jsonl to the uninterrupted run's 4 steps.
    _assert_close(mg, ref, rtol=2e-5)
    _assert_close(_metrics(runs.root / "es" / "metrics.jsonl"), GOLDEN_ES["metrics"], rtol=1e-4)


@pytest.mark.slow
def test_only_process_zero_writes(runs: Runs) -> None:
    zero, one = (r["writes"] for r in runs.pair)
    assert one == [], one
    written = {Path(str(p)).name for p in zero}  # type: ignore[union-attr]
    assert {"config.json", "metrics.jsonl"} <= written
    assert any(".eqx" in name for name in written)  # a checkpoint (through a temporary name)


@pytest.mark.slow
def test_checkpoint_of_two_processes_resumes_on_one(runs: Runs) -> None:
    # The pair's run stopped at its checkpoint of step 2 (train_steps 2); one process took it
    # to step 4: the checkpoint holds the whole population.
    saved = json.loads((runs.root / "mg" / "ckpt" / "step_00000004.json").read_text())
    assert saved["step"] == 4
    final = _metrics(runs.root / "mg" / "metrics.jsonl")[-1]
    want = _metrics(runs.root / "ref_mg" / "metrics.jsonl")[-1]
    _assert_close([final], [want], rtol=2e-5)


@pytest.mark.slow
def test_different_flags_fail_at_start_naming_the_field(runs: Runs) -> None:
    assert [r["codes"][2] for r in runs.pair] == [2, 2]  # type: ignore[index]
    for err in runs.pair_err:
        message = " ".join(err.split())  # rich wraps
        assert "--num-agents is 4 on process 0, 8 on process 1" in message, err
    assert not (runs.root / "bad").exists()


def test_unreachable_coordinator_fails_within_the_timeout(tmp_path: Path) -> None:
    dead_port = _free_port()  # nothing listens there
    start = time.perf_counter()
    dead = subprocess.run(
        [sys.executable, "-m", "lpgx_cli.main", "train", "--out", str(tmp_path / "dead"),
         "--coordinator", f"127.0.0.1:{dead_port}", "--num-processes", "2", "--process-id", "1",
         "--coordinator-timeout", str(DEAD_TIMEOUT_S)],
        env=_env(1), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    dead_s = time.perf_counter() - start
    assert dead.returncode == 2, dead.stderr
    message = " ".join(dead.stderr.split())
    assert "no coordinator answered at 127.0.0.1:" in message, message
    assert f"within {DEAD_TIMEOUT_S} s" in message
    # The timeout plus starting Python and importing lpgx (a few seconds on a loaded machine).
    assert dead_s < DEAD_TIMEOUT_S + 30, dead_s
