r"""The arms of the comparison, as data.

An :class:`Arm` says how a round chooses its prompts (``selector``), where
the success probabilities handed to the allocator come from (``source``),
how rollouts are allocated (``allocation``) and how the policy learns from
them (``learner``). Every arm spends exactly ``B * n_bar`` rollouts per
round. Arms that share a :meth:`Arm.program` (the predictor; everything
else is a per-run number) run in one compiled program, vectorised over arms
and seeds.

Arms that name a predictor run as soon as that name is in the predictor
registry (:mod:`vipcore._src.predict.registry`); until then they are
skipped with a note (:func:`resolve_arms`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vipcore._src.apps.simulate.config import SimConfig

__all__ = ["Arm", "default_arms", "resolve_arms", "ROLES", "PLANNER_CANDIDATES"]

#: What an arm is for in the protocol.
ROLES = ("baseline", "ladder", "oracle", "planner", "comparator", "control",
         "secondary")


@dataclass(frozen=True)
class Arm:
    """One arm of the comparison.

    Attributes:
      name: identifier (``--arms``, ``results.json``).
      label: human-readable name for the report.
      role: one of :data:`ROLES`.
      selector: ``"batch"`` (the round's first ``B`` candidates), ``"greso"``
        or ``"mopps"`` (:mod:`.selectors`).
      source: ``"none"``, ``"oracle"`` (the policy's exact ``p``),
        ``"predictor"`` (a registered predictor) or ``"posterior"`` (the
        MoPPS Beta posterior mean).
      allocation: ``"uniform"`` (``n_bar`` each), ``"vip"`` (the exact
        allocation of problem (5) on ``p_hat``) or ``"vip_expected"`` (on
        the posterior-expected variance ``E[4p(1-p)]``).
      learner: ``"standard"`` (one step per round) or ``"dapo"``.
      n_bar: rollouts per prompt (None = the configuration's ``n_bar``).
      permute: shuffle ``p_hat`` within the batch before allocating.
      equal_steps: DAPO variant that steps every round.
      predictor, predictor_options: registry name and factory keywords.
      embedding: ``"network"`` or ``"descriptor"`` (predictors that use one).
      family: the comparator family (``"dapo"``, ``"greso"``, ``"mopps"``).
    """

    name: str
    label: str
    role: str
    selector: str = "batch"
    source: str = "none"
    allocation: str = "uniform"
    learner: str = "standard"
    n_bar: int | None = None
    permute: bool = False
    equal_steps: bool = False
    predictor: str | None = None
    predictor_options: tuple[tuple[str, Any], ...] = ()
    embedding: str = "network"
    family: str = ""

    def program(self) -> tuple:
        """The static structure shared by arms that compile together: the
        predictor (everything else is a per-run number)."""
        if self.predictor is None:
            return ()
        return (self.predictor, self.predictor_options, self.embedding)


def default_arms(cfg: SimConfig) -> list[Arm]:
    """Every arm of the protocol, in report order."""
    n = cfg.rollouts_per_prompt
    arms = [Arm("uniform", f"uniform n = {n}", "baseline")]
    arms += [Arm(f"uniform_n{k}", f"uniform n = {k} (ladder)", "ladder", n_bar=k)
             for k in cfg.ladder if k != n]
    arms += [
        Arm("vip_oracle", "VIP, oracle p", "oracle", source="oracle",
            allocation="vip"),
        Arm("vip_permuted", "VIP, p permuted in the batch (negative control)",
            "control", source="oracle", allocation="vip", permute=True),
        Arm("vip_gp", "VIP, GP (Algorithm 1)", "planner", source="predictor",
            allocation="vip", predictor="gp"),
        Arm("vip_gp_binomial", "VIP, GP with binomial noise", "planner",
            source="predictor", allocation="vip", predictor="gp",
            predictor_options=(("noise", "binomial"),)),
        Arm("vip_beta", "VIP, discounted Beta", "planner", source="predictor",
            allocation="vip", predictor="beta"),
        Arm("vip_beta_expected", "VIP, discounted Beta, expected variance",
            "planner", source="predictor", allocation="vip_expected",
            predictor="beta"),
        Arm("vip_gp_descriptor", "VIP, GP (Algorithm 1), task descriptor",
            "secondary", source="predictor", allocation="vip", predictor="gp",
            embedding="descriptor"),
        Arm("dapo", "DAPO filtering (buffer)", "comparator", learner="dapo",
            family="dapo"),
        Arm("dapo_steps", "DAPO filtering (step every round)", "comparator",
            learner="dapo", equal_steps=True, family="dapo"),
        Arm("greso", "GRESO skipping", "comparator", selector="greso",
            family="greso"),
        Arm("mopps", "MoPPS selection", "comparator", selector="mopps",
            family="mopps"),
        Arm("mopps_vip", "MoPPS selection + VIP", "planner", selector="mopps",
            source="posterior", allocation="vip"),
    ]
    return arms


#: Roles whose arms may be chosen as "the best vipcore planner".
PLANNER_CANDIDATES = ("planner",)


def resolve_arms(cfg: SimConfig) -> tuple[list[Arm], dict[str, str]]:
    """The arms to run and, for each arm left out, why.

    ``cfg.arms`` (empty = all) selects by name; unknown names raise
    ``ValueError``. Arms whose predictor is not registered, or that allocate
    on the expected variance with a predictor that has no posterior
    variance, are skipped with a note.
    """
    from vipcore._src.predict.registry import PREDICTORS

    every = default_arms(cfg)
    names = [a.name for a in every]
    unknown = [a for a in cfg.arms if a not in names]
    if unknown:
        raise ValueError(f"arms must be names from {names}; got {unknown}")
    wanted = [a for a in every if not cfg.arms or a.name in cfg.arms]
    run, skipped = [], {}
    for arm in wanted:
        if arm.predictor and arm.predictor not in PREDICTORS:
            skipped[arm.name] = (f"predictor {arm.predictor!r} is not registered "
                                 f"(registered: {sorted(PREDICTORS)})")
            continue
        if arm.allocation == "vip_expected" and not _has_variance(arm):
            skipped[arm.name] = (f"predictor {arm.predictor!r} has no posterior "
                                 "variance")
            continue
        run.append(arm)
    if not run:
        raise ValueError(f"no arm can run: {skipped}")
    return run, skipped


def _has_variance(arm: Arm) -> bool:
    from vipcore._src.predict.registry import get_predictor

    spec = get_predictor(arm.predictor)
    pred = spec.factory(link="sigmoid", **dict(arm.predictor_options))
    return pred.variance is not None
