"""Environments (layer 1): the environment and task-distribution interfaces, the LPG grid
world and its level sets."""

from ._base import AbstractEnvironment as AbstractEnvironment
from ._base import AbstractTaskDistribution as AbstractTaskDistribution
from ._base import ObsSpec as ObsSpec
from ._base import Task as Task
from ._gridworld import NUM_ACTIONS as NUM_ACTIONS
from ._gridworld import EnvState as EnvState
from ._gridworld import GridWorld as GridWorld
from ._gridworld import Level as Level
from ._gridworld import place_in_free_cells as place_in_free_cells
from ._levels import LEVEL_SET_NAMES as LEVEL_SET_NAMES
from ._levels import LevelFamily as LevelFamily
from ._levels import LevelSet as LevelSet
from ._levels import get_level_set as get_level_set
from ._levels import maze_layouts as maze_layouts
from ._optimal import OptimalValues as OptimalValues
from ._optimal import greedy_action as greedy_action
from ._optimal import optimal_return as optimal_return
from ._optimal import optimal_values as optimal_values
from ._optimal_batched import optimal_returns as optimal_returns
from ._render import level_info as level_info
from ._render import plot_levels as plot_levels
from ._render import render_text as render_text
from ._render import split_levels as split_levels
