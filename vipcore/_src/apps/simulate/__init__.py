"""``vipcore simulate``: an equal-rollout benchmark on the device.

Modules: :mod:`.config` (settings), :mod:`.task` (the generated verifiable
task and its embeddings), :mod:`.policy` (the JAX MLP policy), :mod:`.arms`
(the arms, as data), :mod:`.selectors` (GRESO- and MoPPS-style selection),
:mod:`.loop` (the round on the device), :mod:`.train` (every arm, every
seed), :mod:`.analysis` and :mod:`.summary` (the pre-registered analysis),
:mod:`.assumptions` (App. B tests and Props 4.2/4.3 on the real policy),
:mod:`.report` (report.md, results.json, plots) and :mod:`.run` (all of it).
"""
