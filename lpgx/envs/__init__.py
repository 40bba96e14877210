"""Environments (layer 1): the LPG grid world, its level sets, and the environment interface."""

from ._base import AbstractEnvironment as AbstractEnvironment
from ._ipd import IPDState as IPDState
from ._ipd import IPDTrajectory as IPDTrajectory
from ._ipd import IteratedPrisonersDilemma as IteratedPrisonersDilemma
from ._ipd import ipd_log_prob as ipd_log_prob
from .gridworld import NUM_ACTIONS as NUM_ACTIONS
from .gridworld import EnvState as EnvState
from .gridworld import GridWorld as GridWorld
from .gridworld import Level as Level
from .gridworld import Task as Task
from .levels import LEVEL_SET_NAMES as LEVEL_SET_NAMES
from .levels import LevelFamily as LevelFamily
from .levels import LevelSet as LevelSet
from .levels import get_level_set as get_level_set
from .levels import maze_layouts as maze_layouts
from .optimal import OptimalValues as OptimalValues
from .optimal import greedy_action as greedy_action
from .optimal import optimal_return as optimal_return
from .optimal import optimal_values as optimal_values
