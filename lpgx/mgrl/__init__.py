"""Meta-gradient RL (MGRL): an A2C agent whose γ, λ, value and entropy coefficients are
meta-learned online, with the LVC option, on MinAtar (gymnax) and Atari (ale-py)."""

from ._networks import ActorCritic as ActorCritic
from ._online import OnlineConfig as OnlineConfig
from ._online import OnlineRun as OnlineRun
from ._online import OnlineTrainer as OnlineTrainer
from ._online import OnlineTrainState as OnlineTrainState
from ._online import inner_update as inner_update
from ._online import rollout as rollout
from ._online import unrolled_outer_loss as unrolled_outer_loss
from ._rule import HYPERPARAMETER_NAMES as HYPERPARAMETER_NAMES
from ._rule import MetaHyperparams as MetaHyperparams
from ._rule import inner_loss as inner_loss
from ._rule import outer_advantages as outer_advantages
from ._rule import outer_loss as outer_loss
from ._vecenv import ATARI_EXTRA as ATARI_EXTRA
from ._vecenv import AbstractVecEnv as AbstractVecEnv
from ._vecenv import AtariVec as AtariVec
from ._vecenv import GymnaxVec as GymnaxVec
from ._vecenv import StepOut as StepOut
from ._vecenv import ale_available as ale_available
