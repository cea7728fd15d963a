"""VIP inside a real (small) training loop: ``vipcore simulate`` as a library.

A generated verifiable task, a small JAX MLP policy trained with optax, every
allocation method at the same rollout budget, and the paper's assumptions
measured on the real policy. See ``docs/simulate.md``.
"""

from vipcore._src.apps.simulate.assumptions import appendix_b_tests as appendix_b_tests
from vipcore._src.apps.simulate.assumptions import collect as collect
from vipcore._src.apps.simulate.assumptions import (
    measure_checkpoints as measure_checkpoints,
)
from vipcore._src.apps.simulate.assumptions import props_check as props_check
from vipcore._src.apps.simulate.report import summarize as summarize
from vipcore._src.apps.simulate.report import write_report as write_report
from vipcore._src.apps.simulate.run import simulate as simulate
from vipcore._src.apps.simulate.task import Task as Task
from vipcore._src.apps.simulate.task import make_task as make_task
from vipcore._src.apps.simulate.train import METHODS as METHODS
from vipcore._src.apps.simulate.train import QUICK as QUICK
from vipcore._src.apps.simulate.train import SimConfig as SimConfig
from vipcore._src.apps.simulate.train import make_tasks as make_tasks
from vipcore._src.apps.simulate.train import run_training as run_training

__all__ = [
    "METHODS",
    "QUICK",
    "SimConfig",
    "Task",
    "appendix_b_tests",
    "collect",
    "make_task",
    "make_tasks",
    "measure_checkpoints",
    "props_check",
    "run_training",
    "simulate",
    "summarize",
    "write_report",
]
