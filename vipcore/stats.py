"""Statistical tests of the paper's Assumption 4.1 (App. B).

Eager functions take ragged groups and validate; the ``*_masked`` functions
are pure and jittable on padded arrays, for use inside ``jit``/``vmap``.
See ``docs/stats.md``.
"""

from vipcore._src.stats.api import EDGINGTON_EXACT_MAX_Q as EDGINGTON_EXACT_MAX_Q
from vipcore._src.stats.api import EdgingtonResult as EdgingtonResult
from vipcore._src.stats.api import FisherResult as FisherResult
from vipcore._src.stats.api import PearsonGroupsResult as PearsonGroupsResult
from vipcore._src.stats.api import VarianceTestResult as VarianceTestResult
from vipcore._src.stats.api import edgington as edgington
from vipcore._src.stats.api import edgington_masked as edgington_masked
from vipcore._src.stats.api import fisher as fisher
from vipcore._src.stats.api import fisher_masked as fisher_masked
from vipcore._src.stats.api import levene as levene
from vipcore._src.stats.api import levene_masked as levene_masked
from vipcore._src.stats.api import obrien as obrien
from vipcore._src.stats.api import obrien_masked as obrien_masked
from vipcore._src.stats.api import pearson_groups as pearson_groups
from vipcore._src.stats.api import pearson_masked as pearson_masked
from vipcore._src.stats.distributions import chi2_sf as chi2_sf
from vipcore._src.stats.distributions import f_sf as f_sf
from vipcore._src.stats.distributions import irwin_hall_cdf as irwin_hall_cdf
from vipcore._src.stats.distributions import t_sf_two_sided as t_sf_two_sided

__all__ = [
    "EDGINGTON_EXACT_MAX_Q",
    "EdgingtonResult",
    "FisherResult",
    "PearsonGroupsResult",
    "VarianceTestResult",
    "chi2_sf",
    "edgington",
    "edgington_masked",
    "f_sf",
    "fisher",
    "fisher_masked",
    "irwin_hall_cdf",
    "levene",
    "levene_masked",
    "obrien",
    "obrien_masked",
    "pearson_groups",
    "pearson_masked",
    "t_sf_two_sided",
]
