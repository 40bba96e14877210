"""Evaluating update rules: fresh agents trained by a rule on tasks it has not seen.

Three views of the same question. `evaluate_rule` and the held-out helpers measure one rule on
held-out tasks, on the scale of their optimum where it is known (what a run's ``eval.json``
holds); `compare` and `learning_curves` meta-test several rules side by side on the same
agents with common random numbers (``lpgx eval``), and `PeriodicEvaluation` does so during a
run (``--eval-on``); `record_episode` and `plot_episode` show one trained agent's episode
(``lpgx levels show --agent``).
"""

from ._episode import Episode as Episode
from ._episode import plot_episode as plot_episode
from ._episode import record_episode as record_episode
from ._episode import train_and_record as train_and_record
from ._held_out import EvalResult as EvalResult
from ._held_out import evaluate_rule as evaluate_rule
from ._held_out import fraction_of_optimal as fraction_of_optimal
from ._held_out import held_out_key as held_out_key
from ._held_out import held_out_optimum as held_out_optimum
from ._held_out import held_out_tasks as held_out_tasks
from ._meta_testing import EvalSettings as EvalSettings
from ._meta_testing import PeriodicEvaluation as PeriodicEvaluation
from ._meta_testing import compare as compare
from ._meta_testing import learning_curves as learning_curves
