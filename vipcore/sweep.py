"""Pre-flight variance sweep: which prompts can teach GRPO anything.

See ``docs/sweep.md`` and ``docs/data.md``. Library functions work on a
``(prompts, K)`` score matrix, ragged per-prompt lists, or flat scores plus
``counts``; :func:`read_scores` reads JSONL/CSV/Parquet/Arrow files and
:func:`from_table` in-memory tables (Hugging Face ``datasets``, pyarrow,
pandas, dicts), with column mapping; :func:`run_sweep` scores samples with a
callable (batched, concurrent) and can resume an interrupted sweep;
:func:`prompt_table` gives every prompt's bucket and posterior ``p_hat``.
"""

from vipcore._src.sweep.analysis import BUCKETS as BUCKETS
from vipcore._src.sweep.analysis import THRESHOLDS as THRESHOLDS
from vipcore._src.sweep.analysis import Advice as Advice
from vipcore._src.sweep.analysis import Potential as Potential
from vipcore._src.sweep.analysis import PromptMetrics as PromptMetrics
from vipcore._src.sweep.analysis import SweepReport as SweepReport
from vipcore._src.sweep.analysis import ZeroStd as ZeroStd
from vipcore._src.sweep.analysis import advise as advise
from vipcore._src.sweep.analysis import analyze as analyze
from vipcore._src.sweep.analysis import as_ragged as as_ragged
from vipcore._src.sweep.analysis import assign_buckets as assign_buckets
from vipcore._src.sweep.analysis import bucket_counts as bucket_counts
from vipcore._src.sweep.analysis import bucket_transitions as bucket_transitions
from vipcore._src.sweep.analysis import frac_reward_zero_std as frac_reward_zero_std
from vipcore._src.sweep.analysis import high_variance as high_variance
from vipcore._src.sweep.analysis import improvement_potential as improvement_potential
from vipcore._src.sweep.analysis import miss_probability as miss_probability
from vipcore._src.sweep.analysis import prompt_metrics as prompt_metrics
from vipcore._src.sweep.analysis import rollouts_for_miss_rate as rollouts_for_miss_rate
from vipcore._src.sweep.analysis import zero_std_probability as zero_std_probability
from vipcore._src.sweep.io import SweepData as SweepData
from vipcore._src.sweep.io import demo_data as demo_data
from vipcore._src.sweep.io import from_table as from_table
from vipcore._src.sweep.io import read_scores as read_scores
from vipcore._src.sweep.io import select_step as select_step
from vipcore._src.sweep.io import text_id as text_id
from vipcore._src.sweep.plots import plot_pass_rate_hist as plot_pass_rate_hist
from vipcore._src.sweep.plots import plot_transitions as plot_transitions
from vipcore._src.sweep.plots import plot_variance as plot_variance
from vipcore._src.sweep.posterior import Posterior as Posterior
from vipcore._src.sweep.posterior import posterior_p as posterior_p
from vipcore._src.sweep.runner import run_sweep as run_sweep
from vipcore._src.sweep.summary import format_summary as format_summary
from vipcore._src.sweep.summary import prompt_table as prompt_table
from vipcore._src.sweep.summary import summarize as summarize

__all__ = [
    "BUCKETS",
    "THRESHOLDS",
    "Advice",
    "Potential",
    "Posterior",
    "PromptMetrics",
    "SweepData",
    "SweepReport",
    "ZeroStd",
    "advise",
    "analyze",
    "as_ragged",
    "assign_buckets",
    "bucket_counts",
    "bucket_transitions",
    "demo_data",
    "format_summary",
    "from_table",
    "frac_reward_zero_std",
    "high_variance",
    "improvement_potential",
    "miss_probability",
    "plot_pass_rate_hist",
    "plot_transitions",
    "plot_variance",
    "posterior_p",
    "prompt_metrics",
    "prompt_table",
    "read_scores",
    "rollouts_for_miss_rate",
    "run_sweep",
    "select_step",
    "summarize",
    "text_id",
    "zero_std_probability",
]
