"""lpgx: meta-learning reinforcement-learning update rules in JAX and Equinox.

Everything a user embeds is re-exported here; private modules are not part of the API.
Importing lpgx changes nothing outside it (no ``XLA_FLAGS``, nothing registered with JAX); its
CPU speed-ups are one explicit call, `enable_speedups`, made before the first JAX computation.
"""

from . import mgrl as mgrl
from ._threefry import use_straight_line_threefry as use_straight_line_threefry
from .agents import Agent as Agent
from .agents import Trajectory as Trajectory
from .agents import rollout as rollout
from .compose import PRESETS as PRESETS
from .compose import TrainConfig as TrainConfig
from .compose import build_trainer as build_trainer
from .curriculum import PLR as PLR
from .curriculum import AbstractCurriculum as AbstractCurriculum
from .curriculum import DomainRandomisation as DomainRandomisation
from .curriculum import Frozen as Frozen
from .envs import LEVEL_SET_NAMES as LEVEL_SET_NAMES
from .envs import MDP as MDP
from .envs import AbstractEnvironment as AbstractEnvironment
from .envs import AbstractTaskDistribution as AbstractTaskDistribution
from .envs import EnvState as EnvState
from .envs import GridWorld as GridWorld
from .envs import IPDTrajectory as IPDTrajectory
from .envs import IteratedPrisonersDilemma as IteratedPrisonersDilemma
from .envs import Level as Level
from .envs import LevelSet as LevelSet
from .envs import MDPTrajectory as MDPTrajectory
from .envs import ObsSpec as ObsSpec
from .envs import TabularMDP as TabularMDP
from .envs import Task as Task
from .envs import get_level_set as get_level_set
from .envs import optimal_return as optimal_return
from .envs import optimal_returns as optimal_returns
from .evaluation import EvalResult as EvalResult
from .evaluation import evaluate_rule as evaluate_rule
from .lifetime import AgentConfig as AgentConfig
from .lifetime import AgentState as AgentState
from .lifetime import Learner as Learner
from .lifetime import agent_update as agent_update
from .lifetime import evaluate_return as evaluate_return
from .lifetime import train_lifetime as train_lifetime
from .meta import AbstractMetaOptimiser as AbstractMetaOptimiser
from .meta import ESAgents as ESAgents
from .meta import ESConfig as ESConfig
from .meta import EvolutionStrategy as EvolutionStrategy
from .meta import MetaGradient as MetaGradient
from .meta import MetaGradientConfig as MetaGradientConfig
from .meta import MetaState as MetaState
from .mgrl import MetaHyperparams as MetaHyperparams
from .mgrl import OnlineConfig as OnlineConfig
from .mgrl import OnlineTrainer as OnlineTrainer
from .rules import A2C as A2C
from .rules import LPG as LPG
from .rules import A2CConfig as A2CConfig
from .rules import AbstractUpdateRule as AbstractUpdateRule
from .rules import IntrinsicReward as IntrinsicReward
from .rules import LifetimeContext as LifetimeContext
from .rules import LPGConfig as LPGConfig
from .rules import MAMLInit as MAMLInit
from .rules import estimators as estimators
from .run_dir import RunDir as RunDir
from .speedups import enable_speedups as enable_speedups
from .trainer import Trainer as Trainer
from .trainer import TrainState as TrainState

__version__ = "0.1.0.dev0"
