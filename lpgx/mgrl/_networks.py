"""The MGRL agent: a torso (Nature CNN, MinAtar CNN or MLP), a policy head and a critic
conditioned on the discount γ it predicts values for.

The γ-conditioned critic is the reference's: ``Linear(1 → 16)(γ)`` concatenated with the
torso's features, then ``Linear(F + 16 → F) + ReLU`` and ``Linear(F → 1)``. A critic told which
γ it predicts for stays meaningful while the meta-learned γ moves. Weights are orthogonal
(ReLU gain √2; the policy head 0.01, the value head 1) with zero biases, as in the reference.
"""

import itertools
import math
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.typing import DTypeLike
from jaxtyping import Array, Float

from .._typing import FloatScalar, PRNGKeyArray

__all__ = ["ActorCritic", "Torso", "orthogonal"]

Torso = Literal["nature", "minatar", "mlp"]
_RELU_GAIN = math.sqrt(2.0)


def orthogonal(key: PRNGKeyArray, shape: tuple[int, int], gain: float, dtype: DTypeLike) -> Array:
    """A random ``shape`` matrix with orthonormal rows or columns, times `gain`.

    The orthogonal (polar) factor of a Gaussian matrix, found by Newton–Schulz iterations
    (matrix products only), is Haar-distributed like the Q of a QR decomposition (what
    ``jax.nn.initializers.orthogonal`` computes). LAPACK's QR is avoided on purpose: a
    vmapped, jitted QR over a run's seeds hung jaxlib 0.10.2 on a loaded CPU machine.
    """
    rows, cols = shape
    tall = rows >= cols
    x = jax.random.normal(key, shape if tall else (cols, rows), jnp.float32)
    x = x / jnp.linalg.norm(x)  # singular values in (0, 1]

    def step(y: Array, _: None) -> tuple[Array, None]:
        return 1.5 * y - 0.5 * y @ (y.T @ y), None

    # Each step multiplies a small singular value by 1.5 until it nears 1 (cubic from there):
    # 60 steps reach 1 from below 1e-10.
    x, _ = jax.lax.scan(step, x, None, length=60)
    x = x if tall else x.T
    return (gain * x).astype(dtype)


def _orthogonal_linear(
    n_in: int, n_out: int, gain: float, dtype: DTypeLike, *, key: PRNGKeyArray
) -> eqx.nn.Linear:
    lin = eqx.nn.Linear(n_in, n_out, key=key, dtype=dtype)
    weight = orthogonal(key, (n_out, n_in), gain, dtype)
    return eqx.tree_at(lambda m: (m.weight, m.bias), lin, (weight, jnp.zeros(n_out, dtype)))


def _orthogonal_conv(
    c_in: int, c_out: int, size: int, stride: int, dtype: DTypeLike, *, key: PRNGKeyArray
) -> eqx.nn.Conv2d:
    conv = eqx.nn.Conv2d(c_in, c_out, size, stride, key=key, dtype=dtype)
    flat = orthogonal(key, (c_out, c_in * size * size), _RELU_GAIN, dtype)
    weight = jnp.reshape(flat, (c_out, c_in, size, size))
    bias = jnp.zeros((c_out, 1, 1), dtype)
    return eqx.tree_at(lambda m: (m.weight, m.bias), conv, (weight, bias))


class ActorCritic(eqx.Module):
    """Policy logits and γ-conditioned value of one observation.

    **Arguments:**

    - ``obs_shape``: the environment's observation shape; the network reshapes the flat
      observation it is given to it. ``nature``: ``(4, 84, 84)`` stacked grey frames in
      ``[0, 255]`` (scaled by 1/255); ``minatar``: ``(10, 10, C)`` channels last; ``mlp``: any.
    - ``num_actions``: size of the policy's categorical distribution.
    - ``torso``: ``"nature"`` (conv 32 8×8/4, 64 4×4/2, 64 3×3/1, FC 512), ``"minatar"``
      (conv 16 3×3/1, FC 128; the MinAtar paper's network) or ``"mlp"`` (``hidden`` widths).
    - ``hidden``: widths of the ``mlp`` torso.
    - ``dtype``: parameter dtype (float64 for gradient checks).
    """

    convs: tuple[eqx.nn.Conv2d, ...]
    dense: tuple[eqx.nn.Linear, ...]
    policy: eqx.nn.Linear
    gamma_embed: eqx.nn.Linear
    critic_hidden: eqx.nn.Linear
    critic_out: eqx.nn.Linear
    obs_shape: tuple[int, ...] = eqx.field(static=True)
    torso: Torso = eqx.field(static=True)
    strides: tuple[int, ...] = eqx.field(static=True)

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        num_actions: int,
        torso: Torso = "minatar",
        hidden: tuple[int, ...] = (64,),
        dtype: DTypeLike = jnp.float32,
        *,
        key: PRNGKeyArray,
    ):
        keys = iter(jax.random.split(key, 16))
        self.obs_shape = tuple(obs_shape)
        self.torso = torso
        if torso == "nature":
            if len(obs_shape) != 3:
                raise ValueError(
                    f"the Nature CNN needs (frames, H, W) observations, got {obs_shape}"
                )
            specs = ((obs_shape[0], 32, 8, 4), (32, 64, 4, 2), (64, 64, 3, 1))
            size = (obs_shape[1], obs_shape[2])
            widths: tuple[int, ...] = (512,)
        elif torso == "minatar":
            if len(obs_shape) != 3:
                raise ValueError(f"the MinAtar CNN needs (H, W, C) observations, got {obs_shape}")
            specs = ((obs_shape[2], 16, 3, 1),)
            size = (obs_shape[0], obs_shape[1])
            widths = (128,)
        else:
            specs = ()
            size = (0, 0)
            widths = hidden
            if not widths:
                raise ValueError("the mlp torso needs at least one hidden width")
        self.convs = tuple(
            _orthogonal_conv(c_in, c_out, k, s, dtype, key=next(keys))
            for c_in, c_out, k, s in specs
        )
        self.strides = tuple(s for *_, s in specs)
        if specs:
            for _, _, k, s in specs:
                size = ((size[0] - k) // s + 1, (size[1] - k) // s + 1)
            n_in = specs[-1][1] * size[0] * size[1]
        else:
            n_in = math.prod(obs_shape)
        sizes = (n_in, *widths)
        self.dense = tuple(
            _orthogonal_linear(a, b, _RELU_GAIN, dtype, key=next(keys))
            for a, b in itertools.pairwise(sizes)
        )
        features = widths[-1]
        self.policy = _orthogonal_linear(features, num_actions, 0.01, dtype, key=next(keys))
        self.gamma_embed = _orthogonal_linear(1, 16, _RELU_GAIN, dtype, key=next(keys))
        self.critic_hidden = _orthogonal_linear(
            features + 16, features, _RELU_GAIN, dtype, key=next(keys)
        )
        self.critic_out = _orthogonal_linear(features, 1, 1.0, dtype, key=next(keys))

    def features(self, obs: Array) -> Float[Array, " features"]:
        """The torso's features of one (flat or shaped) observation."""
        dtype = self.policy.weight.dtype
        x = jnp.reshape(obs, self.obs_shape).astype(dtype)
        if self.torso == "nature":
            x = x / jnp.asarray(255.0, dtype)
        elif self.torso == "minatar":
            x = jnp.transpose(x, (2, 0, 1))
        for conv in self.convs:
            x = jax.nn.relu(conv(x))
        x = jnp.reshape(x, (-1,))
        for layer in self.dense:
            x = jax.nn.relu(layer(x))
        return x

    def __call__(
        self, obs: Array, gamma: FloatScalar
    ) -> tuple[Float[Array, " actions"], FloatScalar]:
        """``(logits, V_γ(obs))``."""
        h = self.features(obs)
        g = jax.nn.relu(self.gamma_embed(jnp.reshape(gamma, (1,)).astype(h.dtype)))
        v = jax.nn.relu(self.critic_hidden(jnp.concatenate([h, g])))
        return self.policy(h), self.critic_out(v)[0]

    def logits(self, obs: Array) -> Float[Array, " actions"]:
        """The policy's logits only (acting needs no critic)."""
        return self.policy(self.features(obs))
