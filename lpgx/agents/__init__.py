"""Agents (layer 2): networks, the two-headed `Agent`, and rollouts."""

from ._agent import Agent as Agent
from ._networks import MLPNet as MLPNet
from ._networks import TabularNet as TabularNet
from ._networks import make_net as make_net
from ._rollout import Trajectory as Trajectory
from ._rollout import first_episode_returns as first_episode_returns
from ._rollout import reset_workers as reset_workers
from ._rollout import rollout as rollout
