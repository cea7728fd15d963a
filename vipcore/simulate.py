"""An equal-rollout benchmark on the device: ``vipcore simulate`` as a library.

A generated verifiable task, a small JAX MLP policy trained with optax, every
arm (uniform, the uniform ladder, VIP with oracle and predicted success
probabilities, DAPO, GRESO- and MoPPS-style selection, a negative control) at
exactly ``C`` rollouts per round, many paired seeds in one compiled program,
the pre-registered analysis, and the paper's assumptions measured on the real
policy. See ``docs/simulate.md``.
"""

from vipcore._src.apps.simulate.analysis import holm as holm
from vipcore._src.apps.simulate.analysis import paired_t as paired_t
from vipcore._src.apps.simulate.analysis import seeds_for_power as seeds_for_power
from vipcore._src.apps.simulate.arms import Arm as Arm
from vipcore._src.apps.simulate.arms import default_arms as default_arms
from vipcore._src.apps.simulate.arms import resolve_arms as resolve_arms
from vipcore._src.apps.simulate.assumptions import appendix_b_tests as appendix_b_tests
from vipcore._src.apps.simulate.assumptions import collect as collect
from vipcore._src.apps.simulate.assumptions import (
    measure_checkpoints as measure_checkpoints,
)
from vipcore._src.apps.simulate.assumptions import props_check as props_check
from vipcore._src.apps.simulate.config import FULL as FULL
from vipcore._src.apps.simulate.config import QUICK as QUICK
from vipcore._src.apps.simulate.config import TASKS as TASKS
from vipcore._src.apps.simulate.config import SimConfig as SimConfig
from vipcore._src.apps.simulate.config import with_task as with_task
from vipcore._src.apps.simulate.report import write_report as write_report
from vipcore._src.apps.simulate.run import simulate as simulate
from vipcore._src.apps.simulate.summary import summarize as summarize
from vipcore._src.apps.simulate.task import Task as Task
from vipcore._src.apps.simulate.task import make_task as make_task
from vipcore._src.apps.simulate.task import network_embeddings as network_embeddings
from vipcore._src.apps.simulate.train import make_tasks as make_tasks
from vipcore._src.apps.simulate.train import run_training as run_training

__all__ = [
    "FULL",
    "QUICK",
    "TASKS",
    "Arm",
    "SimConfig",
    "Task",
    "appendix_b_tests",
    "collect",
    "default_arms",
    "holm",
    "make_task",
    "make_tasks",
    "measure_checkpoints",
    "network_embeddings",
    "paired_t",
    "props_check",
    "resolve_arms",
    "run_training",
    "seeds_for_power",
    "simulate",
    "summarize",
    "with_task",
    "write_report",
]
