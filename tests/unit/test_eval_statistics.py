"""Each statistic against a value worked out by hand (the working is in the comments)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from agentkit.errors import ConfigError
from agentkit.eval import ExampleResult, Summary, summarize
from agentkit.eval.comparison import (
    compare_against_first,
    compare_dirs,
    load_comparisons,
    write_comparisons,
)
from agentkit.eval.statistics import (
    Z95,
    Comparison,
    accuracy_ci,
    balanced_accuracy_ci,
    bootstrap_ci,
    holm,
    mcnemar_exact,
    paired_comparison,
    wilson_interval,
    with_holm,
)

Z2 = Z95 * Z95  # 3.841459


# --------------------------------------------------------------------------- Wilson


def test_wilson_interval_on_known_counts() -> None:
    # 7/10: (k + z²/2 ± z·sqrt(k(n-k)/n + z²/4)) / (n + z²)
    #   centre = (7 + 1.920729) / 13.841459 = 0.644495
    #   half   = 1.959964 · sqrt(2.1 + 0.960365) / 13.841459 = 1.959964 · 1.749390 / 13.841459 = 0.247717
    #   -> 0.396778 .. 0.892212 (the textbook 0.3968-0.8922)
    lo, hi = wilson_interval(7, 10)
    assert lo == pytest.approx(0.396778, abs=2e-6) and hi == pytest.approx(0.892209, abs=2e-6)
    # 0/30: centre = half = (z²/2) / (30 + z²), so lo = 0 and hi = z² / (30 + z²) = 3.841459 / 33.841459 = 0.113513
    lo, hi = wilson_interval(0, 30)
    assert lo == 0.0 and hi == pytest.approx(3.841459 / 33.841459, rel=1e-6) and hi > 0.11
    # n/n mirrors 0/n
    assert wilson_interval(30, 30) == pytest.approx((1 - 0.113513, 1.0), abs=1e-6)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)
    with pytest.raises(ValueError):
        wilson_interval(4, 3)


def test_accuracy_ci_is_wilson_and_never_degenerate() -> None:
    assert accuracy_ci([True] * 7 + [False] * 3) == wilson_interval(7, 10)
    lo, hi = accuracy_ci([False] * 30)
    assert lo == 0.0 and hi > 0.11  # the old bootstrap said 0.0-0.0
    assert accuracy_ci([]) is None


# --------------------------------------------------------------------------- McNemar and Holm


def test_mcnemar_exact_on_known_tables() -> None:
    # b=1, c=9: X ~ Bin(10, 1/2); p = 2 · (C(10,0) + C(10,1)) / 2^10 = 2 · 11 / 1024 = 0.021484375
    assert mcnemar_exact(1, 9) == 0.021484375
    assert mcnemar_exact(9, 1) == 0.021484375  # two-sided: symmetric
    # b=0, c=5: 2 · 1 / 32 = 0.0625
    assert mcnemar_exact(0, 5) == 0.0625
    # b=c=5: 2 · P(X <= 5) = 2 · 638/1024 > 1 -> capped at 1
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(0, 0) == 1.0  # no discordant pairs: no evidence either way
    # large counts stay exact (integers, no float overflow): b=0, c=1000 -> 2 / 2^1000 = 2^-999
    assert mcnemar_exact(0, 1000) == math.ldexp(1.0, -999)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_holm_on_known_pvalues() -> None:
    # m = 4 tests; sorted 0.01, 0.03, 0.04, 0.5 -> 4·0.01 = 0.04; 3·0.03 = 0.09; 2·0.04 = 0.08 -> max(0.09, 0.08)
    # = 0.09 (step-down keeps them monotone); 1·0.5 = 0.5. None is not a test and stays None.
    assert holm([0.01, 0.04, 0.03, None, 0.5]) == pytest.approx([0.04, 0.09, 0.09, None, 0.5])
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # capped at 1
    assert holm([]) == [] and holm([None]) == [None]


# --------------------------------------------------------------------------- cluster bootstrap


def _toy_clusters() -> tuple[list[float], list[str], list[float]]:
    """10 clusters of 4 identical rows: 6 clusters all right, 4 all wrong."""
    cluster_means = [1.0] * 6 + [0.0] * 4
    values = [m for m in cluster_means for _ in range(4)]
    clusters = [str(i // 4) for i in range(40)]
    return values, clusters, cluster_means


def test_cluster_bootstrap_equals_the_bootstrap_over_cluster_means() -> None:
    values, clusters, means = _toy_clusters()
    clustered = bootstrap_ci(values, clusters, seed=3)
    # drawing 10 clusters of 4 identical rows is drawing 10 cluster means: the same draws, the same CI
    assert clustered == bootstrap_ci(means, seed=3)
    assert clustered == bootstrap_ci(values, clusters, seed=3)  # seeded: reproducible
    rows = bootstrap_ci(values, seed=3)  # treating the 40 rows as independent
    assert clustered is not None and rows is not None
    assert clustered[1] - clustered[0] > 1.5 * (rows[1] - rows[0])
    assert bootstrap_ci([]) is None
    with pytest.raises(ValueError, match="clusters has 3 entries for 40 rows"):
        bootstrap_ci(values, ["a", "b", "c"])


def test_clustered_accuracy_ci_uses_the_effective_sample_size() -> None:
    values, clusters, _ = _toy_clusters()
    outcomes = [v == 1.0 for v in values]
    independent = accuracy_ci(outcomes)
    clustered = accuracy_ci(outcomes, clusters)
    assert independent == wilson_interval(24, 40)
    assert clustered is not None and independent is not None
    assert clustered[1] - clustered[0] > independent[1] - independent[0]
    # identical rows in a cluster: deff ≈ cluster size 4, so n_eff ≈ 10 and the CI ≈ Wilson(6, 10)
    assert clustered == pytest.approx(wilson_interval(6, 10), abs=0.02)
    assert accuracy_ci(outcomes, clusters) == clustered  # seeded
    # nothing varies: the worst case, one observation per cluster -> Wilson(0, 10): hi = z²/(10 + z²) = 0.277533
    lo, hi = accuracy_ci([False] * 40, clusters)
    assert lo == 0.0 and hi == pytest.approx(Z2 / (10 + Z2), rel=1e-9)
    # a cluster of None is a row on its own: no clusters at all is plain Wilson
    assert accuracy_ci(outcomes, [None] * 40) == independent


def test_balanced_accuracy_ci_adjusted_wald_by_hand() -> None:
    # class a: 3/4, class b: 1/2, C = 2 -> adjusted (3 + 1)/(4 + 2) = 0.666667 and (1 + 1)/(2 + 2) = 0.5
    # centre 0.583333; var = (0.666667·0.333333/6 + 0.5·0.5/4) / 4 = (0.037037 + 0.0625)/4 = 0.024884
    # half = 1.959964 · 0.157747 = 0.309179 -> 0.274154 .. 0.892513
    golds = ["a"] * 4 + ["b"] * 2
    outcomes = [True, True, True, False, True, False]
    lo, hi = balanced_accuracy_ci(golds, outcomes, ["a", "b"])
    assert lo == pytest.approx(0.274154, abs=2e-6) and hi == pytest.approx(0.892513, abs=2e-6)
    # never degenerate: all wrong still has an upper bound above 0
    lo, hi = balanced_accuracy_ci(golds, [False] * 6, ["a", "b"])
    assert lo == 0.0 and hi > 0.1
    assert balanced_accuracy_ci(golds, outcomes, ["c"]) is None  # no rows of the named classes
    # clustered: at least as wide as unclustered
    wide = balanced_accuracy_ci(golds, outcomes, ["a", "b"], ["q1", "q1", "q2", "q2", "q1", "q2"])
    assert wide is not None and wide[1] - wide[0] >= 0.892513 - 0.274154 - 1e-9


# --------------------------------------------------------------------------- paired comparisons


def _pairs() -> tuple[list[bool], list[bool]]:
    """20 examples: 5 both right, 5 both wrong, 1 only a right, 9 only b right."""
    a = [True] * 5 + [False] * 5 + [True] * 1 + [False] * 9
    b = [True] * 5 + [False] * 5 + [False] * 1 + [True] * 9
    return a, b


def test_paired_comparison_by_hand() -> None:
    a, b = _pairs()
    c = paired_comparison("a", "b", a, b)
    # accuracy 6/20 - 14/20 = -0.4; discordant 1 and 9 -> McNemar p = 0.021484375
    assert (c.n_paired, c.diff, c.mcnemar_p, c.clustered) == (20, pytest.approx(-0.4), 0.021484375, False)
    assert c.diff_ci95 is not None and c.diff_ci95[0] < -0.4 < c.diff_ci95[1] < 0
    assert paired_comparison("a", "b", a, b) == c  # seeded
    clustered = paired_comparison("a", "b", a, b, [str(i // 2) for i in range(20)])
    assert clustered.clustered and clustered.mcnemar_p is None and clustered.diff == pytest.approx(-0.4)
    empty = paired_comparison("a", "b", [], [])
    assert empty.n_paired == 0 and empty.diff is None and empty.mcnemar_p is None
    with pytest.raises(ValueError):
        paired_comparison("a", "b", [True], [])


def test_with_holm_fills_holm_p_across_the_list() -> None:
    rows = [Comparison(a="a", b=x, n_paired=1, diff=0.0, diff_ci95=(0.0, 0.0), mcnemar_p=p)
            for x, p in (("b", 0.01), ("c", 0.04), ("d", None))]
    assert [c.holm_p for c in with_holm(rows)] == pytest.approx([0.02, 0.04, None])


# --------------------------------------------------------------------------- run directories


def _run_dir(path: Path, pattern: str, outcomes: list[bool], clusters: list[str] | None = None,
             extra_ids: int = 0) -> Path:
    path.mkdir(parents=True)
    results = [ExampleResult(id=f"e{i}", prediction="x", label="x" if ok else "y", correct=ok,
                             cluster=None if clusters is None else clusters[i])
               for i, ok in enumerate(outcomes)]
    results += [ExampleResult(id=f"only-{pattern}-{i}", label="x", correct=True) for i in range(extra_ids)]
    (path / "results.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in results), encoding="utf-8")
    summary = summarize(results).model_copy(update={"pattern": pattern, "dataset": "toy"})
    (path / "summary.json").write_text(summary.model_dump_json(), encoding="utf-8")
    return path


def test_compare_dirs_pairs_on_shared_ids_and_writes_the_json(tmp_path: Path) -> None:
    a, b = _pairs()
    da = _run_dir(tmp_path / "mine", "mine", a, extra_ids=3)  # ids only one run has are not paired
    db = _run_dir(tmp_path / "base", "direct", b)
    c = compare_dirs(da, db)
    assert (c.a, c.b, c.n_paired, c.mcnemar_p) == ("mine", "direct", 20, 0.021484375)
    assert c.diff == pytest.approx(-0.4)
    assert compare_dirs(da, db, ids=["e0", "e10", "missing"]).n_paired == 2  # restricted to the ids given
    named = compare_dirs(da, db, a_name="A", b_name="B")
    assert (named.a, named.b) == ("A", "B")
    out = write_comparisons(tmp_path / "out" / "comparison.json", [c])
    data = json.loads(out.read_text(encoding="utf-8"))
    assert isinstance(data, list) and len(data) == 1
    assert {"a", "b", "n_paired", "diff", "diff_ci95", "mcnemar_p"} <= set(data[0])
    assert load_comparisons(out) == [c]
    with pytest.raises(ConfigError, match="no summary.json"):
        compare_dirs(da, tmp_path / "nowhere")
    (tmp_path / "bad.json").write_text('[{"a": 1}]')
    with pytest.raises(ConfigError, match="not a comparison list"):
        load_comparisons(tmp_path / "bad.json")


def test_the_ids_given_filter_the_pairs_but_never_reorder_them(tmp_path: Path) -> None:
    """The bootstrap CI depends on the pairs' order: --baselines passes its selection in dataset order,
    --compare passes none, and a run finished under concurrency has its results in another order."""
    a = [i % 3 == 0 or i % 7 == 0 for i in range(50)]
    b = [i % 2 == 0 for i in range(50)]
    da, db = _run_dir(tmp_path / "a", "a", a), _run_dir(tmp_path / "b", "b", b)
    lines = (da / "results.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (da / "results.jsonl").write_text("".join(lines[1::2] + lines[::2]), encoding="utf-8")  # completion order
    dataset_order = [f"e{i}" for i in range(50)]
    # on these 50 pairs the order matters: dataset order gives (-0.24, 0.14), this file's order (-0.26, 0.12)
    assert compare_dirs(da, db).diff_ci95 == pytest.approx((-0.26, 0.12))
    assert compare_dirs(da, db, ids=dataset_order) == compare_dirs(da, db)
    assert compare_dirs(da, db, ids=list(reversed(dataset_order))) == compare_dirs(da, db)


def test_compare_dirs_uses_recorded_clusters(tmp_path: Path) -> None:
    a, b = _pairs()
    clusters = [str(i // 2) for i in range(20)]
    c = compare_dirs(_run_dir(tmp_path / "a", "a", a, clusters), _run_dir(tmp_path / "b", "b", b, clusters))
    assert c.clustered and c.mcnemar_p is None and c.holm_p is None


def test_compare_against_first_is_holm_corrected(tmp_path: Path) -> None:
    a, b = _pairs()
    dirs = [_run_dir(tmp_path / "x", "x", a), _run_dir(tmp_path / "y", "y", b), _run_dir(tmp_path / "z", "z", a)]
    got = compare_against_first(dirs)
    assert [(c.a, c.b) for c in got] == [("x", "y"), ("x", "z")]
    # x vs z: identical runs, p = 1; x vs y: 0.021484375 -> Holm: 2 · 0.021484375 = 0.04296875, then max(1, ...) = 1
    assert got[0].holm_p == pytest.approx(2 * 0.021484375) and got[1].holm_p == 1.0
    assert got[1].diff == 0.0 and got[1].diff_ci95 == (0.0, 0.0)


def test_summary_reports_clusters_and_a_wider_ci() -> None:
    values, clusters, _ = _toy_clusters()
    rows = [ExampleResult(id=f"e{i}", prediction="x", label="x", correct=v == 1.0, cluster=c)
            for i, (v, c) in enumerate(zip(values, clusters, strict=True))]
    clustered = summarize(rows)
    plain = summarize([r.model_copy(update={"cluster": None}) for r in rows])
    assert clustered.n_clusters == 10 and plain.n_clusters is None
    assert plain.accuracy_ci95 == pytest.approx(wilson_interval(24, 40))
    lo, hi = clustered.accuracy_ci95
    assert hi - lo > plain.accuracy_ci95[1] - plain.accuracy_ci95[0]
    assert Summary.model_validate_json(clustered.model_dump_json()) == clustered
    assert not math.isnan(lo)
