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
from ..envs import InputLayout

__all__ = ["MLPNet", "TabularNet", "make_net"]

_lecun_normal = jax.nn.initializers.lecun_normal()
# Standard deviation of a normal truncated to ±2, which lecun-normal divides by.
_TRUNCATED_STD = 0.87962566103423978


def _lecun_by_input(key: PRNGKeyArray, layout: InputLayout, out: int) -> Float[Array, "inputs out"]:
    """Lecun-normal weights, one row per input, each drawn from `key` folded with the input's
    padding-independent name and scaled by the layout's fan-in (`InputLayout`)."""

    def row(name: Array) -> Array:
        k = jax.random.fold_in(jax.random.fold_in(key, name[0]), name[1])
        return jax.random.truncated_normal(k, -2.0, 2.0, (out,), jnp.float32)

    scale = jax.lax.rsqrt(layout.fan_in.astype(jnp.float32)) / _TRUNCATED_STD
    return jax.vmap(row)(layout.ids) * scale


def _check_layout(layout: InputLayout, obs_size: int) -> None:
    if layout.ids.shape[0] != obs_size:
        raise ValueError(
            f"the input layout names {layout.ids.shape[0]} inputs but the network has {obs_size}"
        )


class TabularNet(eqx.Module):
    """A linear layer without bias over a one-hot observation, stored as a table.

    Integer observations index the table directly (no one-hot matmul); float observations
    (a one-hot written out, possibly with extra features) multiply it.
    """

    table: Float[Array, "obs out"]

    def __init__(
        self,
        obs_size: int,
        out_size: int,
        *,
        key: PRNGKeyArray,
        layout: InputLayout | None = None,
    ):
        if layout is None:
            # Flax's default Dense init (lecun-normal, fan-in = obs_size), as in the reference.
            self.table = _lecun_normal(key, (obs_size, out_size), jnp.float32)
        else:  # the same init, row by row by the inputs' padding-independent names
            _check_layout(layout, obs_size)
            self.table = _lecun_by_input(key, layout, out_size)

    def __call__(self, obs: Array) -> Float[Array, " out"]:
        if jnp.issubdtype(obs.dtype, jnp.integer):
            return self.table[obs]
        return obs @ self.table


class MLPNet(eqx.Module):
    """An MLP with ReLU hidden layers, lecun-normal weights and zero biases."""

    layers: tuple[eqx.nn.Linear, ...]
    obs_size: int = eqx.field(static=True)

    def __init__(
        self,
        obs_size: int,
        out_size: int,
        hidden: tuple[int, ...],
        *,
        key: PRNGKeyArray,
        layout: InputLayout | None = None,
    ):
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
        if layout is not None:  # first layer drawn input by input (`InputLayout`)
            _check_layout(layout, obs_size)
            first = _lecun_by_input(keys[0], layout, sizes[1]).T
            head = eqx.tree_at(lambda lin: lin.weight, self.layers[0], first)
            self.layers = (head, *self.layers[1:])
        self.obs_size = obs_size

    def __call__(self, obs: Array) -> Float[Array, " out"]:
        x = jax.nn.one_hot(obs, self.obs_size) if jnp.issubdtype(obs.dtype, jnp.integer) else obs
        for layer in self.layers[:-1]:
            x = jax.nn.relu(layer(x))
        return self.layers[-1](x)


def make_net(
    obs_size: int,
    out_size: int,
    hidden: tuple[int, ...],
    *,
    key: PRNGKeyArray,
    layout: InputLayout | None = None,
) -> TabularNet | MLPNet:
    """A tabular net when ``hidden == ()``, else an MLP; with `layout`, the first layer's
    initial weights do not depend on how the level is padded (`InputLayout`)."""
    if hidden:
        return MLPNet(obs_size, out_size, hidden, key=key, layout=layout)
    return TabularNet(obs_size, out_size, key=key, layout=layout)
