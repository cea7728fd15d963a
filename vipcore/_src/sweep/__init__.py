"""The pre-flight variance sweep: which prompts can teach GRPO anything.

Modules: :mod:`.analysis` (metrics, buckets, advice, miss probability),
:mod:`.io` (file readers and the resumable :func:`run_sweep`),
:mod:`.summary` (the summary dict and its text) and :mod:`.plots`
(matplotlib figures, imported lazily).
"""
