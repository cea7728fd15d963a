"""Success-probability prediction: the predictor protocol and its models.

Modules: :mod:`.protocol` (:class:`Predictor`, :class:`PredictorSpec`),
:mod:`.registry` (predictors by name, GP presets), :mod:`.gp` (Algorithm 1
and its binomial-noise extension), :mod:`.beta` (the discounted Beta–Bernoulli
posterior with an embedding prior, the pooled mean), :mod:`.baselines`
(moving average, ridge), :mod:`.uncertainty` (what the allocator is given
under posterior uncertainty), :mod:`.kernels` (the RBF kernel, median
bandwidth, padded Cholesky), :mod:`._batch` (validation, padding, pooling),
:mod:`._state_io` (pickle-free state files) and :mod:`.calibration` (MAE,
Brier, ECE, and the allocation a prediction leads to).
"""
