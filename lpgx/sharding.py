"""Spreading the agent population over devices with JAX's own sharding.

A 1-D `Mesh` named ``"agents"``. The population (a meta-optimiser's agents: every leaf has the
agent axis first) is placed with `NamedSharding(mesh, P("agents"))` by `shard_agents`;
everything else (the rule, optimiser states, the curriculum's level buffer) is replicated by
`replicate`. Placement is by role, never by shape: a rule weight whose first dimension happens
to equal the number of agents stays replicated. Under `jit`, XLA partitions the vmapped work
(rollouts, agent updates, ES candidates) by agent; the mean of the meta-gradient over agents
(or the ES update from all candidates' fitness) is the only cross-device reduction. The same
code runs on one device, on forced host devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=8``) and multi-host via `jax.distributed`.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import PyTree

__all__ = [
    "AXIS",
    "agent_mesh",
    "check_divisible",
    "peak_memory_bytes",
    "replicate",
    "shard_agents",
]

AXIS = "agents"
"""The name of the mesh axis the agents are split along."""


def _devices_text() -> str:
    devices = jax.devices()
    text = f"{len(devices)} {devices[0].platform} device(s)"
    if jax.process_count() > 1:
        text += f" ({jax.process_count()} processes × {jax.local_device_count()})"
    return text


def agent_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh named ``"agents"`` over `num_devices` devices (default: all).

    Over several processes (`lpgx.distributed`) the mesh spans every process's devices, each
    process's as one contiguous block (so each holds one contiguous share of the agents), and
    `num_devices` counts them all: it must be a multiple of the number of processes, and the
    first ``num_devices / processes`` devices of each process are used.
    """
    devices = jax.devices()
    processes = jax.process_count()
    n = len(devices) if num_devices is None else num_devices
    if not 1 <= n <= len(devices) or n % processes:
        per = f" a multiple of {processes} (the processes)" if processes > 1 else ""
        raise ValueError(
            f"--devices {n} is not available: this run sees {_devices_text()}; pass a "
            f"number from 1 to {len(devices)}{per}, or leave --devices out to use all. (For "
            "several CPU devices, set XLA_FLAGS=--xla_force_host_platform_device_count=N "
            "before starting.)"
        )
    if processes == 1:
        return Mesh(np.asarray(devices[:n]), (AXIS,))
    ordered = sorted(devices, key=lambda d: (d.process_index, d.id))
    per_process = n // processes
    chosen = [
        d
        for p in range(processes)
        for d in [x for x in ordered if x.process_index == p][:per_process]
    ]
    return Mesh(np.asarray(chosen), (AXIS,))


def check_divisible(
    num_agents: int, num_mini_batches: int, mesh: Mesh, population: int | None = None
) -> None:
    """Raise (before compiling) unless the agents and each mini-batch split evenly over the
    devices of `mesh`.

    **Arguments:**

    - `num_agents`: the agents the meta-optimiser keeps between steps (ES: antithetic pairs).
    - `num_mini_batches`: sequential groups the population is evaluated in.
    - `population`: what is split into mini-batches when it differs from `num_agents`
      (ES: the ``2 × num_agents`` candidates).
    """
    n = mesh.devices.size
    pop = num_agents if population is None else population
    per_batch = pop // max(num_mini_batches, 1)
    what = "agents" if population is None else "candidates"
    where = f"{n} devices"
    if jax.process_count() > 1:
        where += f" ({jax.process_count()} processes)"
    if num_agents % n:
        raise ValueError(
            f"{num_agents} agents cannot be split over {where}: make --num-agents a "
            f"multiple of {n}, or pass --devices with a divisor of {num_agents}."
        )
    if pop % n or per_batch % n:
        raise ValueError(
            f"{pop} {what} in {num_mini_batches} mini-batch(es) of {per_batch} cannot be "
            f"split over {where}: make --num-agents / --num-mini-batches a multiple of "
            f"{n}, or pass --devices with a divisor of {per_batch}."
        )


def _put(
    x: jax.Array | np.ndarray | jax.ShapeDtypeStruct, sharding: NamedSharding
) -> jax.Array | jax.ShapeDtypeStruct:
    """`x` placed with `sharding`; over several processes, a whole (host or single-device)
    value that every process holds is cut to each process's shards. A `jax.ShapeDtypeStruct`
    (an array to come, e.g. from `equinox.filter_eval_shape`) gets the sharding as its own."""
    if isinstance(x, jax.ShapeDtypeStruct):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding, weak_type=x.weak_type)
    if sharding.is_fully_addressable or (isinstance(x, jax.Array) and not x.is_fully_addressable):
        return jax.device_put(x, sharding)
    whole = np.asarray(x)
    return jax.make_array_from_callback(whole.shape, sharding, lambda index: whole[index])


def shard_agents(agents: PyTree, mesh: Mesh) -> PyTree:
    """Place every array leaf of `agents` split along its first (agent) axis over `mesh`.
    Over several processes, every process passes the whole population and keeps its share.
    `jax.ShapeDtypeStruct` leaves get the sharding they would be placed with.

    Raises `ValueError` if a leaf is a scalar or its first axis does not divide by the number
    of devices (check with `check_divisible` first for a message about the config).
    """
    split = NamedSharding(mesh, PartitionSpec(AXIS))
    n = mesh.devices.size

    def place(x: object) -> object:
        if not isinstance(x, jax.Array | jax.ShapeDtypeStruct):
            return x
        if x.ndim == 0 or x.shape[0] % n:
            raise ValueError(
                f"an agent array of shape {x.shape} cannot be split along its first axis over "
                f"{n} devices; every leaf of the population must have the agent axis first "
                f"and a multiple of {n} agents."
            )
        return _put(x, split)

    return jax.tree.map(place, agents)


def replicate(tree: PyTree, mesh: Mesh) -> PyTree:
    """Place every array leaf of `tree` on all devices of `mesh` (a full copy on each);
    `jax.ShapeDtypeStruct` leaves get that sharding."""
    everywhere = NamedSharding(mesh, PartitionSpec())

    def place(x: object) -> object:
        return _put(x, everywhere) if isinstance(x, jax.Array | jax.ShapeDtypeStruct) else x

    return jax.tree.map(place, tree)


def peak_memory_bytes(num_devices: int | None = None) -> int | None:
    """The largest peak memory in use so far on any of the first `num_devices` devices
    (default: all; process-wide, monotone), or ``None`` where the backend does not report it
    (CPU)."""
    peaks = []
    for device in jax.devices()[:num_devices]:
        if device.process_index != jax.process_index():
            continue  # another process's device: its memory is not visible here
        stats = device.memory_stats()
        peak = stats.get("peak_bytes_in_use", stats.get("bytes_in_use")) if stats else None
        if peak is not None:
            peaks.append(int(peak))
    return max(peaks) if peaks else None
