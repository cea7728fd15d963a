"""Success-probability prediction: the predictor protocol and its models.

Modules: :mod:`.protocol` (:class:`Predictor`, :class:`PredictorSpec`),
:mod:`.registry` (predictors by name), :mod:`.gp` (Algorithm 1),
:mod:`.baselines` (moving average, ridge), :mod:`.kernels` (the RBF kernel,
median bandwidth, padded Cholesky), :mod:`._batch` (validation, padding,
pooling) and :mod:`.calibration` (MAE, Brier, ECE).
"""
