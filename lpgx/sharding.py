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


def agent_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh named ``"agents"`` over the first `num_devices` devices (default: all)."""
    devices = jax.devices()
    n = len(devices) if num_devices is None else num_devices
    if not 1 <= n <= len(devices):
        raise ValueError(
            f"--devices {n} is not available: this process sees {len(devices)} "
            f"{devices[0].platform} device(s); pass a number from 1 to {len(devices)}, or "
            "leave --devices out to use all. (For several CPU devices, set "
            "XLA_FLAGS=--xla_force_host_platform_device_count=N before starting.)"
        )
    return Mesh(np.asarray(devices[:n]), (AXIS,))


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
    if num_agents % n:
        raise ValueError(
            f"{num_agents} agents cannot be split over {n} devices: make --num-agents a "
            f"multiple of {n}, or pass --devices with a divisor of {num_agents}."
        )
    if pop % n or per_batch % n:
        raise ValueError(
            f"{pop} {what} in {num_mini_batches} mini-batch(es) of {per_batch} cannot be "
            f"split over {n} devices: make --num-agents / --num-mini-batches a multiple of "
            f"{n}, or pass --devices with a divisor of {per_batch}."
        )


def shard_agents(agents: PyTree, mesh: Mesh) -> PyTree:
    """Place every array leaf of `agents` split along its first (agent) axis over `mesh`.

    Raises `ValueError` if a leaf is a scalar or its first axis does not divide by the number
    of devices (check with `check_divisible` first for a message about the config).
    """
    split = NamedSharding(mesh, PartitionSpec(AXIS))
    n = mesh.devices.size

    def place(x: object) -> object:
        if not isinstance(x, jax.Array):
            return x
        if x.ndim == 0 or x.shape[0] % n:
            raise ValueError(
                f"an agent array of shape {x.shape} cannot be split along its first axis over "
                f"{n} devices; every leaf of the population must have the agent axis first "
                f"and a multiple of {n} agents."
            )
        return jax.device_put(x, split)

    return jax.tree.map(place, agents)


def replicate(tree: PyTree, mesh: Mesh) -> PyTree:
    """Place every array leaf of `tree` on all devices of `mesh` (a full copy on each)."""
    everywhere = NamedSharding(mesh, PartitionSpec())

    def place(x: object) -> object:
        return jax.device_put(x, everywhere) if isinstance(x, jax.Array) else x

    return jax.tree.map(place, tree)


def peak_memory_bytes(num_devices: int | None = None) -> int | None:
    """The largest peak memory in use so far on any of the first `num_devices` devices
    (default: all; process-wide, monotone), or ``None`` where the backend does not report it
    (CPU)."""
    peaks = []
    for device in jax.devices()[:num_devices]:
        stats = device.memory_stats()
        peak = stats.get("peak_bytes_in_use", stats.get("bytes_in_use")) if stats else None
        if peak is not None:
            peaks.append(int(peak))
    return max(peaks) if peaks else None
