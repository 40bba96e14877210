"""The agent: a policy head and the update rule's auxiliary head."""

import equinox as eqx
import jax
from jaxtyping import Array, Float

from .._typing import PRNGKeyArray
from ..envs import InputLayout
from ._networks import MLPNet, TabularNet, make_net

__all__ = ["Agent"]


class Agent(eqx.Module):
    """Agent parameters θ: ``policy`` gives action logits, ``aux`` the rule's second output.

    ``aux`` is LPG's prediction vector ``y`` (logits of size ``y_size``) or A2C's value
    (size 1). Both heads use the same body type (table or MLP) and act on one observation.
    """

    policy: TabularNet | MLPNet
    aux: TabularNet | MLPNet

    @staticmethod
    def create(
        obs_size: int,
        num_actions: int,
        aux_size: int,
        hidden: tuple[int, ...],
        *,
        key: PRNGKeyArray,
        layout: InputLayout | None = None,
    ) -> "Agent":
        """Fresh heads; `layout` makes their first layers independent of padding."""
        k_policy, k_aux = jax.random.split(key)
        return Agent(
            policy=make_net(obs_size, num_actions, hidden, key=k_policy, layout=layout),
            aux=make_net(obs_size, aux_size, hidden, key=k_aux, layout=layout),
        )

    def __call__(self, obs: Array) -> tuple[Float[Array, " actions"], Float[Array, " aux"]]:
        return self.policy(obs), self.aux(obs)
