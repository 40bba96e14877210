"""lpgx: meta-learning reinforcement-learning update rules in JAX and Equinox."""

from .envs import LEVEL_SET_NAMES as LEVEL_SET_NAMES
from .envs import AbstractEnvironment as AbstractEnvironment
from .envs import EnvState as EnvState
from .envs import GridWorld as GridWorld
from .envs import Level as Level
from .envs import LevelSet as LevelSet
from .envs import Task as Task
from .envs import get_level_set as get_level_set

__version__ = "0.1.0.dev0"
