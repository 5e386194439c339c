"""The statistics a reviewer asks for: score intervals, cluster bootstraps, exact McNemar, Holm.

Pure functions on plain numbers (no files, no results objects), so each one can be pinned against a
hand-computed value. The choices, and why:

- **Accuracy CI: the Wilson score interval.** Unlike a percentile bootstrap it is never degenerate:
  0/30 gives 0-11.4%, not "0.0-0.0%", and it keeps close to nominal coverage at small n.
- **Clustered rows** (the judging set's four candidates per question) are not independent. The
  accuracy CI is then the Wilson interval at the *effective* sample size n / deff, where the design
  effect deff is the cluster-bootstrap variance (clusters resampled, seeded) over the binomial one,
  kept between 1 (clustering never narrows an interval) and n / clusters (a cluster never counts
  for less than one row). When every outcome is the same there is no variance to measure, and the
  conservative end, one observation per cluster, is used.
- **Balanced accuracy CI: the adjusted Wald interval for a linear combination of proportions**
  (Price & Bonett 2004: 2/C pseudo-successes and 4/C pseudo-trials per class), never degenerate; with
  clusters its variance is inflated by the same kind of bootstrap design effect.
- **Paired differences: a percentile paired bootstrap** (clusters resampled when the rows have
  clusters), and the **exact McNemar test** (two-sided binomial on the discordant pairs) for
  unclustered sets only: McNemar assumes independent pairs.
- **Holm's step-down correction** across the comparisons a report shows.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np
from pydantic import BaseModel, Field

__all__ = [
    "Z95",
    "Comparison",
    "accuracy_ci",
    "balanced_accuracy_ci",
    "bootstrap_ci",
    "holm",
    "mcnemar_exact",
    "paired_comparison",
    "wilson_interval",
    "with_holm",
]

#: the two-sided 95% normal quantile
Z95 = 1.959963984540054

Interval = tuple[float, float]


# --------------------------------------------------------------------------- closed forms


def wilson_interval(k: float, n: float, *, z: float = Z95) -> Interval:
    """Wilson score interval for k successes in n trials (k and n may be effective, non-integer counts).

    ``(k + z²/2 ± z·sqrt(k(n-k)/n + z²/4)) / (n + z²)``; for n > 0 its width is always positive.
    """
    if n <= 0:
        raise ValueError(f"wilson_interval needs n > 0, got n={n}")
    if not 0 <= k <= n:
        raise ValueError(f"wilson_interval needs 0 <= k <= n, got k={k}, n={n}")
    z2 = z * z
    centre = (k + z2 / 2) / (n + z2)
    half = z * math.sqrt(k * (n - k) / n + z2 / 4) / (n + z2)
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value: ``min(1, 2·P(X <= min(b, c)))`` for X ~ Binomial(b + c, 1/2).

    ``b`` and ``c`` are the discordant pairs (first right and second wrong, and the reverse). Computed
    in integers, so it is exact up to the final division; no discordant pairs gives 1.0.
    """
    if b < 0 or c < 0:
        raise ValueError(f"mcnemar_exact needs non-negative counts, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values, in the input order; ``None`` entries are not tests and stay None.

    Sorted ascending, the i-th of m p-values (1-based) becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))``.
    """
    indexed = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(indexed)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


# --------------------------------------------------------------------------- bootstrap machinery


def _groups(n: int, clusters: Sequence[Hashable | None] | None) -> np.ndarray:
    """Integer group codes; without clusters (or for a row whose cluster is None) each row is its own group."""
    if clusters is None:
        return np.arange(n)
    if len(clusters) != n:
        raise ValueError(f"clusters has {len(clusters)} entries for {n} rows")
    codes: dict[Hashable, int] = {}
    out = np.empty(n, dtype=np.int64)
    for row, key in enumerate(clusters):
        out[row] = codes.setdefault(("row", row) if key is None else ("cluster", key), len(codes))
    return out


def _draws(groups: int, resamples: int, seed: int) -> np.ndarray:
    """How often each group is drawn in each resample: drawing ``groups`` groups with replacement is
    a Multinomial(groups, uniform) count vector, which keeps memory at resamples x groups, not x rows."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(groups, np.full(groups, 1.0 / groups), size=resamples).astype(float)


def _group_sums(values: np.ndarray, codes: np.ndarray, groups: int) -> np.ndarray:
    return np.bincount(codes, weights=values, minlength=groups)


def _resampled_means(values: Sequence[float], clusters: Sequence[Hashable | None] | None,
                     resamples: int, seed: int) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    codes = _groups(len(x), clusters)
    groups = int(codes.max()) + 1
    counts = _draws(groups, resamples, seed)
    return (counts @ _group_sums(x, codes, groups)) / (counts @ np.bincount(codes, minlength=groups))


def bootstrap_ci(values: Sequence[float], clusters: Sequence[Hashable | None] | None = None, *,
                 resamples: int = 2000, seed: int = 0) -> Interval | None:
    """Percentile 95% bootstrap CI of the mean of ``values``, resampling clusters when given (seeded).

    A resample of clusters keeps each drawn cluster's rows together, so rows that move together
    (one question's candidates) widen the interval as they should. None for no rows.
    """
    if not len(values):
        return None
    lo, hi = np.percentile(_resampled_means(values, clusters, resamples, seed), [2.5, 97.5])
    return float(lo), float(hi)


def _design_effect(boot_var: float, independent_var: float, n: int, groups: int) -> float:
    worst = n / groups
    if boot_var <= 0 or independent_var <= 0:
        return worst  # nothing varies: assume the worst case, one observation per cluster
    return min(worst, max(1.0, boot_var / independent_var))


def _clustered(clusters: Sequence[Hashable | None] | None) -> bool:
    return clusters is not None and any(c is not None for c in clusters)


# --------------------------------------------------------------------------- accuracy intervals


def accuracy_ci(outcomes: Sequence[bool], clusters: Sequence[Hashable | None] | None = None, *,
                resamples: int = 2000, seed: int = 0) -> Interval | None:
    """95% CI of accuracy: Wilson; with clusters, Wilson at n / deff (see the module docstring)."""
    n = len(outcomes)
    if n == 0:
        return None
    k = float(sum(bool(o) for o in outcomes))
    if not _clustered(clusters):
        return wilson_interval(k, n)
    codes = _groups(n, clusters)
    groups = int(codes.max()) + 1
    p = k / n
    boot = _resampled_means([float(o) for o in outcomes], clusters, resamples, seed)
    deff = _design_effect(float(np.var(boot, ddof=1)) if resamples > 1 else 0.0, p * (1 - p) / n, n, groups)
    n_eff = n / deff
    return wilson_interval(p * n_eff, n_eff)


def _class_table(golds: Sequence[str], outcomes: Sequence[bool], classes: Sequence[str],
                 codes: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(groups x classes) successes and sizes."""
    hits = np.zeros((groups, len(classes)))
    sizes = np.zeros((groups, len(classes)))
    column = {c: j for j, c in enumerate(classes)}
    for row, (gold, ok) in enumerate(zip(golds, outcomes, strict=True)):
        j = column.get(gold)
        if j is not None:
            sizes[codes[row], j] += 1
            hits[codes[row], j] += bool(ok)
    return hits, sizes


def balanced_accuracy_ci(golds: Sequence[str], outcomes: Sequence[bool], classes: Sequence[str],
                         clusters: Sequence[Hashable | None] | None = None, *,
                         resamples: int = 2000, seed: int = 0) -> Interval | None:
    """95% CI of balanced accuracy (mean recall over ``classes`` that have rows): adjusted Wald.

    Each class's recall becomes ``(k + 2/C) / (n + 4/C)``; the interval is their mean ± z·SE, clipped
    to [0, 1] and widened to hold the unadjusted estimate. With clusters the variance is multiplied
    by the design effect of a cluster bootstrap of the balanced accuracy.
    """
    if len(golds) != len(outcomes):
        raise ValueError(f"{len(golds)} gold labels for {len(outcomes)} outcomes")
    codes = _groups(len(golds), clusters)
    groups = int(codes.max()) + 1 if len(codes) else 0
    hits, sizes = _class_table(golds, outcomes, classes, codes, groups)
    k, n = hits.sum(axis=0), sizes.sum(axis=0)
    present = n > 0
    if not present.any():
        return None
    k, n = k[present], n[present]
    c = len(k)
    adjusted = (k + 2 / c) / (n + 4 / c)
    centre = float(adjusted.mean())
    var = float(np.sum(adjusted * (1 - adjusted) / (n + 4 / c))) / c**2
    raw = float((k / n).mean())
    if _clustered(clusters):
        counts = _draws(groups, resamples, seed)
        with np.errstate(invalid="ignore", divide="ignore"):  # a class absent from a resample: no recall
            recalls = (counts @ hits[:, present]) / (counts @ sizes[:, present])
        boot = np.nansum(recalls, axis=1) / np.maximum((~np.isnan(recalls)).sum(axis=1), 1)
        independent = float(np.sum((k / n) * (1 - k / n) / n)) / c**2
        boot_var = float(np.var(boot, ddof=1)) if resamples > 1 else 0.0
        var *= _design_effect(boot_var, independent, len(golds), groups)
    half = Z95 * math.sqrt(var)
    return max(0.0, min(centre - half, raw)), min(1.0, max(centre + half, raw))


# --------------------------------------------------------------------------- paired comparison


class Comparison(BaseModel):
    """Run ``a`` against run ``b`` on the example ids both hold: one entry of comparison.json."""

    a: str = Field(description="the first run (the pattern, or --compare's first directory)")
    b: str = Field(description="the run it is compared with (a baseline)")
    n_paired: int = Field(ge=0, description="example ids both runs finished")
    diff: float | None = Field(description="accuracy of a minus accuracy of b on the paired ids")
    diff_ci95: tuple[float, float] | None = Field(
        description="95% percentile paired bootstrap (clusters resampled when clustered), seeded")
    mcnemar_p: float | None = Field(
        description="exact two-sided McNemar p-value; None for clustered sets (pairs are not independent)")
    holm_p: float | None = Field(None, description="McNemar p after Holm's correction across a list of comparisons")
    clustered: bool = Field(False, description="the rows carry clusters and were resampled by cluster")


def paired_comparison(a: str, b: str, a_correct: Sequence[bool], b_correct: Sequence[bool],
                      clusters: Sequence[Hashable | None] | None = None, *,
                      resamples: int = 2000, seed: int = 0) -> Comparison:
    """Compare two runs' outcomes on the same examples, row i of one paired with row i of the other."""
    if len(a_correct) != len(b_correct):
        raise ValueError(f"paired outcomes differ in length: {len(a_correct)} vs {len(b_correct)}")
    n = len(a_correct)
    clustered = _clustered(clusters)
    if n == 0:
        return Comparison(a=a, b=b, n_paired=0, diff=None, diff_ci95=None, mcnemar_p=None, clustered=clustered)
    diffs = [float(bool(x)) - float(bool(y)) for x, y in zip(a_correct, b_correct, strict=True)]
    only_a = sum(d > 0 for d in diffs)
    only_b = sum(d < 0 for d in diffs)
    return Comparison(
        a=a, b=b, n_paired=n, diff=sum(diffs) / n,
        diff_ci95=bootstrap_ci(diffs, clusters if clustered else None, resamples=resamples, seed=seed),
        mcnemar_p=None if clustered else mcnemar_exact(only_a, only_b), clustered=clustered,
    )


def with_holm(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """Copies with ``holm_p`` set, the correction taken across exactly these comparisons."""
    adjusted = holm([c.mcnemar_p for c in comparisons])
    return [c.model_copy(update={"holm_p": p}) for c, p in zip(comparisons, adjusted, strict=True)]
