"""Agents (layer 2): networks, the two-headed `Agent`, and rollouts."""

from .agent import Agent as Agent
from .networks import MLPNet as MLPNet
from .networks import TabularNet as TabularNet
from .networks import make_net as make_net
from .rollout import Trajectory as Trajectory
from .rollout import reset_workers as reset_workers
from .rollout import rollout as rollout
