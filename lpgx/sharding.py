"""Spreading the agent population over devices with JAX's own sharding.

A 1-D `Mesh` named ``"agents"``; every array whose leading axis is the agent axis is placed with
`NamedSharding(mesh, P("agents"))`, everything else (the rule, optimiser states) is replicated.
Under `jit`, XLA partitions the vmapped work by agent; the mean of the meta-gradient over agents
is the only cross-device reduction. The same code runs on one device, on forced host devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=8``) and multi-host via `jax.distributed`.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import PyTree

__all__ = ["agent_mesh", "check_divisible", "shard_agents"]

AXIS = "agents"


def agent_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh named ``"agents"`` over the first `num_devices` devices (default: all)."""
    devices = jax.devices()
    n = len(devices) if num_devices is None else num_devices
    if not 1 <= n <= len(devices):
        raise ValueError(
            f"--devices {n} is not available: this process sees {len(devices)} "
            f"{devices[0].platform} device(s); pass a number between 1 and {len(devices)}."
        )
    return Mesh(np.asarray(devices[:n]), (AXIS,))


def check_divisible(num_agents: int, num_mini_batches: int, mesh: Mesh) -> None:
    """Raise (before compiling) unless each mini-batch splits evenly over the devices."""
    n = mesh.devices.size
    per_batch = num_agents // max(num_mini_batches, 1)
    if num_agents % n or per_batch % n:
        raise ValueError(
            f"{num_agents} agents in {num_mini_batches} mini-batch(es) of {per_batch} cannot be "
            f"split over {n} devices: make --num-agents / --num-mini-batches a multiple of "
            f"{n}, or pass --devices with a divisor of {per_batch}."
        )


def shard_agents(tree: PyTree, num_agents: int, mesh: Mesh) -> PyTree:
    """Place leaves whose leading axis has length `num_agents` along the mesh; replicate the
    rest."""
    split = NamedSharding(mesh, PartitionSpec(AXIS))
    replicated = NamedSharding(mesh, PartitionSpec())

    def place(x: object) -> object:
        if not isinstance(x, jax.Array):
            return x
        if x.ndim >= 1 and x.shape[0] == num_agents:
            return jax.device_put(x, split)
        return jax.device_put(x, replicated)

    return jax.tree.map(place, tree)
