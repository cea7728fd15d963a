"""Statistical tests of the VIP paper's Assumption 4.1 (App. B).

Modules: :mod:`.api` (the eager, validating tests on ragged groups),
:mod:`.masked` (pure ``*_masked`` cores for ``jit``/``vmap``),
:mod:`.distributions` (survival functions on ``jax.scipy.special``) and
:mod:`.inputs` (ragged-to-padded conversion).
"""
