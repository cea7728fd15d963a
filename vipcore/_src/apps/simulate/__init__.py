"""``vipcore simulate``: VIP inside a small real training loop.

Modules: :mod:`.task` (the generated verifiable task), :mod:`.policy` (the
JAX MLP policy), :mod:`.train` (every method at equal rollout budget),
:mod:`.assumptions` (App. B tests and Props 4.2/4.3 on the real policy),
:mod:`.report` (report.md, results.json, plots) and :mod:`.run` (all of it).
"""
