"""Several processes, one run: JAX's multi-controller runtime (`jax.distributed`).

One process per host (or per GPU), started with the same flags: `initialize` connects them
(``--coordinator HOST:PORT --num-processes N --process-id I``, or what a SLURM / Open MPI job
says when no flag is given), after which `jax.devices()` lists every process's devices and the
``"agents"`` mesh of `lpgx.sharding` spans them all. Collectives go over NCCL on GPUs and gloo
on CPUs; nothing here moves data by other means.

The helpers below are what a run needs around that: agreeing before anything compiles (the same
config everywhere, an error on any process stops every process with its message), the stop
request of a signal agreed at chunk boundaries, and gathering a sharded state onto the host
for the one writer (process 0). On a single process every helper is a no-op or a local copy.
"""

import dataclasses
import json
import os
import socket
import time
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec
from jaxtyping import PyTree

__all__ = [
    "agree",
    "any_process_signal",
    "broadcast_from_writer",
    "check_same_config",
    "gather_to_host",
    "initialize",
    "is_multiprocess",
    "is_writer",
    "localize",
]


def _cluster_size() -> int:
    """The number of processes a SLURM or Open MPI job runs this command as (1 outside one)."""
    for var in ("OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"):
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return 1


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"--coordinator {address!r} is not HOST:PORT; give the address of process 0 and a "
            "free port on it, e.g. --coordinator node001:29500"
        )
    return host.strip("[]"), int(port)


def _wait_for_coordinator(address: str, timeout_s: float) -> None:
    """Return once something listens at `address`; raise `TimeoutError` naming it after
    `timeout_s` seconds (JAX itself would abort the process without the address)."""
    host, port = _split_address(address)
    deadline = time.monotonic() + timeout_s
    last: OSError | None = None
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(2.0, timeout_s)):
                return
        except OSError as e:
            last = e
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"no coordinator answered at {address} within {timeout_s:g} s ({last}); start "
                "process 0 with the same --coordinator (it listens there), check that this "
                "host can reach it (firewall, host name), or raise --coordinator-timeout"
            )
        time.sleep(0.25)


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    timeout_s: int = 300,
) -> bool:
    """Join this process to a multi-process run; returns whether it is one.

    With no argument, a SLURM or Open MPI job of more than one task is detected (as
    `jax.distributed.initialize` does) and anything else is a single process. With
    `coordinator` (``HOST:PORT`` of process 0), `num_processes` and `process_id` are required.
    A process other than 0 waits at most `timeout_s` seconds for the coordinator to listen and
    then raises `TimeoutError` naming the address; the same timeout bounds JAX's own wait for
    every process to register. Call it before anything else uses JAX.

    **Raises:** `ValueError` for incomplete or inconsistent flags, `TimeoutError` as above.
    """
    given = {
        "--coordinator": coordinator,
        "--num-processes": num_processes,
        "--process-id": process_id,
    }
    if jax.distributed.is_initialized():
        return jax.process_count() > 1
    if all(v is None for v in given.values()):
        if _cluster_size() <= 1:
            return False
        jax.distributed.initialize(initialization_timeout=timeout_s)
        return jax.process_count() > 1
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise ValueError(
            f"{', '.join(missing)} missing: a multi-process run needs --coordinator HOST:PORT, "
            "--num-processes N and --process-id I on every process (or none of them under "
            "SLURM / Open MPI, which say them)"
        )
    assert coordinator is not None and num_processes is not None and process_id is not None
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise ValueError(
            f"--process-id {process_id} is not one of the {num_processes} processes; number "
            f"them 0 to {num_processes - 1} (process 0 is the coordinator)"
        )
    if timeout_s < 1:
        raise ValueError(f"--coordinator-timeout must be at least 1 s, got {timeout_s}")
    _split_address(coordinator)
    if num_processes == 1:
        return False
    if process_id != 0:
        _wait_for_coordinator(coordinator, float(timeout_s))
    jax.distributed.initialize(
        coordinator, num_processes, process_id, initialization_timeout=timeout_s
    )
    return True


def is_multiprocess() -> bool:
    """Whether this run spans more than one process."""
    return jax.process_count() > 1


def is_writer() -> bool:
    """Whether this process writes the run directory (process 0)."""
    return jax.process_index() == 0


def _allgather_bytes(data: bytes) -> list[bytes]:
    """Every process's `data`, in process order (a collective: every process calls it)."""
    sizes = multihost_utils.process_allgather(np.array([len(data)], np.int32))
    sizes = np.asarray(sizes).reshape(-1)
    padded = np.zeros(int(sizes.max()), np.uint8)
    padded[: len(data)] = np.frombuffer(data, np.uint8)
    rows = np.asarray(multihost_utils.process_allgather(padded[None], tiled=True))
    return [bytes(row[:n]) for row, n in zip(rows, sizes.tolist(), strict=True)]


def agree(error: BaseException | None) -> None:
    """Raise on every process if any process has an `error` (a collective; a no-op on one
    process unless `error` is given). The process that had it raises it; the others raise a
    `ValueError` quoting it, so no process is left waiting for the others."""
    if not is_multiprocess():
        if error is not None:
            raise error
        return
    text = "" if error is None else f"{type(error).__name__}: {error}"
    messages = [m.decode() for m in _allgather_bytes(text.encode())]
    if error is not None:
        raise error
    failed = [(i, m) for i, m in enumerate(messages) if m]
    if failed:
        i, m = failed[0]
        raise ValueError(f"process {i} failed before training ({m}); every process stops")


def check_same_config(config: Any) -> None:
    """Raise `ValueError` on every process unless all processes were started with the same
    `config` (a dataclass): each process's fields are exchanged at start, and the message
    names every field that differs with its value on each process."""
    if not is_multiprocess():
        return
    mine = dataclasses.asdict(config)
    blobs = _allgather_bytes(json.dumps(mine, sort_keys=True).encode())
    others = [json.loads(b) for b in blobs]
    diffs = []
    for name in sorted(set().union(*others)):
        values = [o.get(name) for o in others]
        if any(v != values[0] for v in values):
            per = ", ".join(f"{v!r} on process {i}" for i, v in enumerate(values))
            diffs.append(f"--{name.replace('_', '-')} is {per}")
    if diffs:
        raise ValueError(
            "the processes were started with different settings: "
            + "; ".join(diffs)
            + ". Start every process with the same flags (only --process-id differs)."
        )


def broadcast_from_writer(value: int | None) -> int | None:
    """Process 0's `value` (a non-negative int or ``None``) on every process (a collective;
    `value` itself on one process)."""
    if not is_multiprocess():
        return value
    sent = np.array([-1 if value is None else value], np.int32)
    got = int(np.asarray(multihost_utils.broadcast_one_to_all(sent)).reshape(-1)[0])
    return None if got < 0 else got


def any_process_signal(signum: int | None) -> int | None:
    """The first signal number any process reports (a collective; `signum` itself on one
    process): every process stops at the same chunk boundary."""
    if not is_multiprocess():
        return signum
    values = multihost_utils.process_allgather(np.array([signum or 0], np.int32))
    nonzero = [int(v) for v in np.asarray(values).reshape(-1) if v]
    return nonzero[0] if nonzero else None


def gather_to_host(tree: PyTree) -> PyTree:
    """`tree` with every array leaf a NumPy copy of its whole (global) value on every process.

    Leaves split over several processes are all-gathered (a collective: every process calls
    it with the same structure); others are copied from a local shard."""
    leaves, treedef = jax.tree.flatten(tree)
    split = [
        i
        for i, x in enumerate(leaves)
        if isinstance(x, jax.Array) and not (x.is_fully_addressable or x.is_fully_replicated)
    ]
    named = [i for i in split if isinstance(leaves[i].sharding, NamedSharding)]
    if named:
        # One all-gather program for the whole population, not one per leaf.
        everywhere = NamedSharding(leaves[named[0]].sharding.mesh, PartitionSpec())
        gathered = jax.jit(lambda xs: xs, out_shardings=everywhere)([leaves[i] for i in named])
        for i, x in zip(named, gathered, strict=True):
            leaves[i] = x
    for i in split:
        if i not in named:
            leaves[i] = multihost_utils.process_allgather(leaves[i], tiled=True)
    host = [np.asarray(x) if isinstance(x, jax.Array) else x for x in leaves]
    return jax.tree.unflatten(treedef, host)


def localize(tree: PyTree) -> PyTree:
    """`tree` with every array leaf on this process's first device (whole values), for work
    each process does on its own (the held-out evaluation)."""
    if not is_multiprocess():
        return tree
    device = jax.local_devices()[0]
    host = gather_to_host(tree)
    return jax.tree.map(
        lambda x: jax.device_put(x, device) if isinstance(x, np.ndarray) else x, host
    )
