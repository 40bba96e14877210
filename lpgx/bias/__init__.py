"""Gradient-bias experiments (layer 6): sampled meta-gradients against exact ones."""

from ._lola import LOLA_VARIANTS as LOLA_VARIANTS
from ._lola import Estimate as Estimate
from ._lola import LolaConfig as LolaConfig
from ._lola import LolaMetrics as LolaMetrics
from ._lola import LolaState as LolaState
from ._lola import compile_lola as compile_lola
from ._lola import dice_objective as dice_objective
from ._lola import exact_lola_meta_gradient as exact_lola_meta_gradient
from ._lola import get_lola_variant as get_lola_variant
from ._lola import lola_init as lola_init
from ._lola import lola_iteration as lola_iteration
from ._lola import off_policy_dice_objective as off_policy_dice_objective
from ._lola import pearson as pearson
from ._lola import run_lola as run_lola
from ._lola import value_loss as value_loss
