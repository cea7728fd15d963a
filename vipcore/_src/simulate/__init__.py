"""A small verifiable RL task trained end to end with VIP (``vipcore simulate``).

Modules: :mod:`.task` (prompts, answers, features, embeddings), :mod:`.policy`
(MLP policy, sampling, per-rollout projected gradients), :mod:`.train` (the
training loop and the allocation methods), :mod:`.assumptions` (Appendix B
tests and Props 4.2/4.3 on the real policy), :mod:`.report` (report.md,
results.json, plots).
"""
