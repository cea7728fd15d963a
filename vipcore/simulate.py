"""An equal-rollout benchmark on the device: ``vipcore simulate`` as a library.

A generated verifiable task, a small JAX MLP policy trained with optax, every
arm (uniform, the uniform ladder, VIP with oracle and predicted success
probabilities, DAPO, GRESO- and MoPPS-style selection, a negative control) at
exactly ``C`` rollouts per round, many paired seeds in one compiled program,
the pre-registered analysis, and the paper's assumptions measured on the real
policy. See ``docs/simulate.md``.

Settings and task:

* :class:`SimConfig`: every setting of a simulation (frozen dataclass);
  :data:`QUICK`, :data:`FULL`: the ``--quick`` and confirmatory overrides;
  :data:`TASKS`, :func:`with_task`: the task shapes and how to apply one.
* :func:`make_tasks`: the training pool and the held-out set of a
  configuration; :func:`make_task`, :class:`Task`: one generated task;
  :func:`network_embeddings`: its frozen random-network prompt embedding.

The policy (a masked-softmax MLP over the answer slots):

* :func:`init_policy`: initial MLP parameters from a PRNG key.
* :func:`sample_answers`: ``num`` sampled answer slots per prompt.
* :func:`success_prob`: each prompt's exact success probability ``p_q``.

Training and analysis:

* :func:`run_training`: every arm for every seed, one compiled program per
  predictor; :class:`Arm`, :func:`default_arms`, :func:`resolve_arms`: the
  arms as data.
* :func:`summarize`, :func:`paired_t`, :func:`holm`, :func:`seeds_for_power`:
  the pre-registered analysis.
* :func:`measure_checkpoints`, :func:`collect`, :func:`appendix_b_tests`,
  :func:`props_check`: the paper's assumptions measured on saved policies.
* :func:`write_report`: ``report.md``, ``results.json`` and plots;
  :func:`simulate`: the whole command as one call.
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
from vipcore._src.apps.simulate.policy import init_params as init_policy
from vipcore._src.apps.simulate.policy import sample as sample_answers
from vipcore._src.apps.simulate.policy import success_prob as success_prob
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
    "init_policy",
    "make_task",
    "make_tasks",
    "measure_checkpoints",
    "network_embeddings",
    "paired_t",
    "props_check",
    "resolve_arms",
    "run_training",
    "sample_answers",
    "seeds_for_power",
    "simulate",
    "success_prob",
    "summarize",
    "with_task",
    "write_report",
]
