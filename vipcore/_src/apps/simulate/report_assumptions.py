"""The assumption section of ``report.md`` (App. B tests and Props 4.2/4.3)."""

from __future__ import annotations

import math

__all__ = ["assumption_markdown", "fmt_p"]


def fmt_p(p) -> str:
    """A p-value for a table: two significant digits, ``<1e-4`` below."""
    if p is None or not math.isfinite(p):
        return "n/a"
    return f"{p:.2g}" if p >= 1e-4 else "<1e-4"


def assumption_markdown(rows, filler_tokens: int = 0) -> str:
    """Markdown tables of the assumption measurements at the checkpoints."""
    L = ["## Assumptions measured on the real policy (App. B, Tables 5-8 layout)\n"]
    L.append(f"Checkpoints of the uniform run (seed 0); {rows[0]['num_questions']} "
             f"held-out questions x {rows[0]['rollouts']} rollouts. Groups with "
             "constant R or Z are excluded from the Pearson tests (counted).\n")
    names = [("fisher_p", "Table 5: Fisher global p (corr(R, Z) = 0)"),
             ("edgington_p", "Table 6: Edgington global p"),
             ("levene_p", "Table 7: Levene (median) p (equal Var(Z))"),
             ("obrien_p", "Table 8: O'Brien p")]
    for key, title in names:
        L.append(f"**{title}**\n")
        ctrl_name = ("Z from an independent draw (control)" if key in (
            "fisher_p", "edgington_p") else "Z shuffled across questions (control)")
        L.append("| fraction of training | mean p | Z = 1ᵀH(o) | Z = ‖H(o)‖₂ | "
                 f"{ctrl_name} |")
        L.append("|---|---|---|---|---|")
        for r in rows:
            src = "independent" if key in ("fisher_p", "edgington_p") else "shuffled"
            ctrl = r["tests"].get(src, {}).get(key)
            L.append(f"| {r['fraction']:.2f} | {r['mean_p']:.3f} | "
                     f"{fmt_p(r['tests']['sum'][key])} | "
                     f"{fmt_p(r['tests']['norm'][key])} | {fmt_p(ctrl)} |")
        L.append("")
    L.append("Pearson groups used / excluded and median |r|: " + "; ".join(
        f"step {r['step']}: {r['tests']['sum']['pearson_used']}/"
        f"{r['tests']['sum']['pearson_excluded']}, "
        f"{r['tests']['sum']['median_abs_r']:.2f}" for r in rows) + "\n")
    L.append("**Props 4.2/4.3 per prompt** (prompts with 0.05 < p < 0.95; "
             "Monte-Carlo Var(G) vs c(n)·Var(Z|q)·4p(1-p) with exact p and "
             "Var(Z|q); 'pooled' uses the mean Var(Z) as the allocator does; "
             "two-sided Bonferroni threshold):\n")
    L.append("| step | estimator | n | prompts | replicates | |z| threshold | "
             "rejected | rejected (pooled) | median emp/theory | "
             "median exact |corr(R,Z)| |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        for est, pc in r["props"].items():
            if not pc.get("num_prompts"):
                L.append(f"| {r['step']} | {est} | - | 0 | - | - | - | - | - | - |")
                continue
            L.append(f"| {r['step']} | {est} | {pc['n']} | {pc['num_prompts']} | "
                     f"{pc['replicates']} | {pc['threshold']:.2f} | "
                     f"{pc['rejected']} | {pc['rejected_pooled']} | "
                     f"{pc['median_ratio']:.2f} | {pc['median_abs_rho']:.2f} |")
    L.append("")
    if filler_tokens:
        L.append(
            f"Reading: each rollout has {filler_tokens} filler tokens that do not "
            "affect the reward, so Z = 1ᵀH(o) averages the answer token's gradient "
            "with many reward-independent ones, as in an LLM. The within-prompt "
            "correlation of R and Z is diluted (median exact |corr| in the last "
            "column), and the per-prompt Props 4.2/4.3 columns show whether that "
            "is enough for Var(G) = c(n) Var(Z|q) Var(R) to hold; the 'pooled' "
            "column and Tables 7-8 show whether one σ_Z² fits all prompts, "
            "which is what the allocator assumes. Controls as for the one-token "
            "case: Tables 5-6 with Z from an independent draw, Tables 7-8 with Z "
            "shuffled across questions.\n")
        return "\n".join(L)
    L.append(
        "Reading: in this task the answer is a single token, so both the reward "
        "and Z are functions of the same sampled token y. Uncorrelated up to "
        "second order (E[Z | R=+1] = E[Z | R=-1] and E[Z² | R=+1] = E[Z² | R=-1]) "
        "with R = +1 only at y = answer forces Var(Z | R=-1) = 0, i.e. Z constant "
        "over the answers: for a one-token policy Assumption 4.1 can only hold "
        "trivially. Measured: R and Z are strongly correlated within a prompt "
        "(|corr| -> 1 once the policy puts its mass on two answers), and "
        "Var(Z|q) differs between prompts. "
        "Assumption 4.1 and the equal-variance assumption of App. B.3 are "
        "therefore violated here, and Props 4.2/4.3 do not hold per prompt. In "
        "an LLM, Z sums over hundreds of tokens most of which do not decide the "
        "reward, which is what dilutes the correlation the paper's Tables 5-8 "
        "fail to detect. Control columns: for Tables 5-6, Z from an independent "
        "second draw of rollouts (R and Z independent by construction); for "
        "Tables 7-8, Z shuffled across all questions (equal variances by "
        "construction). The Pearson t-test assumes continuous data; with Z "
        "taking at most K values per question (and most questions near p = 0 "
        "or 1 late in training) its p-values are only approximately uniform, "
        "and Fisher, which is sensitive to a few tiny p-values, can reject even "
        "in the control; Edgington is robust to that.\n")
    return "\n".join(L)
