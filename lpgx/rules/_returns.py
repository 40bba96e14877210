"""Returns and advantages over time-major batches."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

__all__ = ["entropy", "gae", "normalise"]


def gae(
    reward: Float[Array, "T W"],
    value: Float[Array, "T+1 W"],
    done: Bool[Array, "T W"],
    gamma: float | Float[Array, ""],
    lam: float | Float[Array, ""],
) -> tuple[Float[Array, "T W"], Float[Array, "T W"]]:
    """Generalised advantage estimation; ``done`` ends an episode (no bootstrap across it).

    **Returns:** ``(advantages, value targets = advantages + value[:-1])``.
    """
    not_done = 1.0 - done.astype(reward.dtype)
    delta = reward + gamma * not_done * value[1:] - value[:-1]

    def back(
        carry: Float[Array, " W"], x: tuple[Float[Array, " W"], Float[Array, " W"]]
    ) -> tuple[Float[Array, " W"], Float[Array, " W"]]:
        d, nd = x
        adv = d + gamma * lam * nd * carry
        return adv, adv

    _, adv = jax.lax.scan(back, jnp.zeros_like(value[0]), (delta, not_done), reverse=True)
    return adv, adv + value[:-1]


def normalise(x: Float[Array, "*shape"], eps: float = 1e-8) -> Float[Array, "*shape"]:
    """``(x - mean) / (std + eps)`` over all elements."""
    return (x - jnp.mean(x)) / (jnp.std(x) + eps)


def entropy(logits: Float[Array, "*batch n"]) -> Float[Array, "*batch"]:
    """Entropy of the categorical distributions given by `logits` (last axis)."""
    logp = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(logp) * logp, axis=-1)
