"""Recursive Gaussian-process prediction of success probabilities (Algorithm 1).

See :mod:`vipcore._src.predict.gp` and ``docs/prediction.md``.
"""

from vipcore._src.predict.gp import LINKS as LINKS
from vipcore._src.predict.gp import NOISE_MODELS as NOISE_MODELS
from vipcore._src.predict.gp import GPState as GPState
from vipcore._src.predict.gp import bucket_size as bucket_size
from vipcore._src.predict.gp import default_jitter as default_jitter
from vipcore._src.predict.gp import default_latent_bound as default_latent_bound
from vipcore._src.predict.gp import grow as grow
from vipcore._src.predict.gp import init as init
from vipcore._src.predict.gp import latent_observation as latent_observation
from vipcore._src.predict.gp import median_bandwidth as median_bandwidth
from vipcore._src.predict.gp import posterior_variance as posterior_variance
from vipcore._src.predict.gp import predict as predict
from vipcore._src.predict.gp import rbf_kernel as rbf_kernel
from vipcore._src.predict.gp import shard as shard
from vipcore._src.predict.gp import update as update
from vipcore._src.predict.gp import update_step as update_step

__all__ = [
    "LINKS",
    "NOISE_MODELS",
    "GPState",
    "bucket_size",
    "default_jitter",
    "default_latent_bound",
    "grow",
    "init",
    "latent_observation",
    "median_bandwidth",
    "posterior_variance",
    "predict",
    "rbf_kernel",
    "shard",
    "update",
    "update_step",
]
