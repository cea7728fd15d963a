"""The pre-flight variance sweep: which prompts can teach GRPO anything.

Modules: :mod:`.analysis` (metrics, buckets, advice, miss probability),
:mod:`.tables` (files and in-memory tables as named columns),
:mod:`.io` (column mapping, checks and grouping: :func:`read_scores`,
:func:`from_table`), :mod:`.runner` (the resumable, batched, concurrent
:func:`run_sweep`), :mod:`.posterior` (``p_hat`` and its credible interval),
:mod:`.summary` (the summary dict, its text and the per-prompt table) and
:mod:`.plots` (matplotlib figures, imported lazily).
"""
