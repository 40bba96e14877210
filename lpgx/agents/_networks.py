"""Agent networks: the tabular agent (a table lookup) and the MLP agent.

An `Agent` has two heads over the same kind of body: ``policy`` (action logits) and ``aux``
(the update rule's second output: LPG's prediction-vector logits, or A2C's value). Networks act on
one observation; vmap them for batches.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._typing import PRNGKeyArray

__all__ = ["MLPNet", "TabularNet", "make_net"]

_lecun_normal = jax.nn.initializers.lecun_normal()


class TabularNet(eqx.Module):
    """A linear layer without bias over a one-hot observation, stored as a table.

    Integer observations index the table directly (no one-hot matmul); float observations
    (a one-hot written out, possibly with extra features) multiply it.
    """

    table: Float[Array, "obs out"]

    def __init__(self, obs_size: int, out_size: int, *, key: PRNGKeyArray):
        # Flax's default Dense init (lecun-normal, fan-in = obs_size), as in the reference.
        self.table = _lecun_normal(key, (obs_size, out_size), jnp.float32)

    def __call__(self, obs: Array) -> Float[Array, " out"]:
        if jnp.issubdtype(obs.dtype, jnp.integer):
            return self.table[obs]
        return obs @ self.table


class MLPNet(eqx.Module):
    """An MLP with ReLU hidden layers, lecun-normal weights and zero biases."""

    layers: tuple[eqx.nn.Linear, ...]
    obs_size: int = eqx.field(static=True)

    def __init__(self, obs_size: int, out_size: int, hidden: tuple[int, ...], *, key: PRNGKeyArray):
        sizes = (obs_size, *hidden, out_size)
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(
            eqx.nn.Linear(
                n_in,
                n_out,
                key=k,
            )
            for n_in, n_out, k in zip(sizes[:-1], sizes[1:], keys, strict=True)
        )
        self.layers = tuple(
            eqx.tree_at(
                lambda lin: (lin.weight, lin.bias),
                lin,
                (
                    _lecun_normal(k, (lin.out_features, lin.in_features), jnp.float32),
                    jnp.zeros(lin.out_features, jnp.float32),
                ),
            )
            for lin, k in zip(self.layers, keys, strict=True)
        )
        self.obs_size = obs_size

    def __call__(self, obs: Array) -> Float[Array, " out"]:
        x = jax.nn.one_hot(obs, self.obs_size) if jnp.issubdtype(obs.dtype, jnp.integer) else obs
        for layer in self.layers[:-1]:
            x = jax.nn.relu(layer(x))
        return self.layers[-1](x)


def make_net(
    obs_size: int, out_size: int, hidden: tuple[int, ...], *, key: PRNGKeyArray
) -> TabularNet | MLPNet:
    """A tabular net when ``hidden == ()``, else an MLP."""
    if hidden:
        return MLPNet(obs_size, out_size, hidden, key=key)
    return TabularNet(obs_size, out_size, key=key)
