"""The alert tests (pipeline/alerts/stats.py): known answers, and steady series that must not alarm.

Known answers are the textbook distributions each test reduces to when the
baseline is so large that it is known exactly (values from scipy.stats and, for
Benjamini-Hochberg, the worked example of the original paper). Negative
controls draw steady series (nothing changes between baseline and window) and
check that small p-values are no more frequent than their level says;
positive controls check that a real change is found.
"""

from __future__ import annotations

import numpy as np
import pytest

from touchpoint.pipeline.alerts.stats import benjamini_hochberg, count_test, net_test, share_test

REPLICATES = 2000


def test_count_test_reduces_to_poisson_with_a_long_steady_baseline() -> None:
    baseline = [10] * 2000  # the rate is known: 10 per window, no extra variation
    up = count_test(20, baseline, "up", min_cv=0.0)
    down = count_test(3, baseline, "down", min_cv=0.0)
    assert up.p_value == pytest.approx(0.0034543, rel=0.02)  # P(X >= 20 | Poisson(10))
    assert down.p_value == pytest.approx(0.0103361, rel=0.02)  # P(X <= 3 | Poisson(10))
    assert up.expected == pytest.approx(10, abs=0.01) and up.n == 20 and up.baseline_n == 20000
    assert up.current_low == pytest.approx(12.2165, abs=1e-3) and up.current_high == pytest.approx(30.8884, abs=1e-3)  # Garwood


def test_count_test_widens_with_week_to_week_spread() -> None:
    steady = count_test(200, [100, 100, 100, 100], "up")
    jumpy = count_test(200, [40, 160, 40, 160], "up")  # same mean, campaigns in two weeks
    assert jumpy.p_value > 100 * steady.p_value
    assert jumpy.expected_high > steady.expected_high
    assert count_test(300, [100, 100, 100, 100], "up").p_value < 1e-8


def test_share_test_reduces_to_binomial_with_a_huge_baseline() -> None:
    outcome = share_test(10, 20, [2_000_000], [10_000_000], "up", min_sd=0.0)
    assert outcome.p_value == pytest.approx(0.0025948, rel=0.02)  # P(X >= 10 | Binomial(20, 0.2))
    assert outcome.current == 50.0 and outcome.expected == pytest.approx(20.0, abs=1e-3)
    assert outcome.current_low < 50 < outcome.current_high


def test_net_test_uses_the_variance_of_the_three_way_split() -> None:
    # Baseline: 50% promoters, 20% detractors (NPS 30); per response variance 0.5 + 0.2 - 0.3^2 = 0.61.
    slots = 4
    outcome = net_test(30, 20, 100, [125_000] * slots, [50_000] * slots, [250_000] * slots, "down", min_sd=0.0)
    assert outcome.expected == pytest.approx(30.0) and outcome.current == pytest.approx(10.0)
    assert outcome.score == pytest.approx(-2.5606, abs=1e-3)  # (0.1 - 0.3) / sqrt(0.61/100 + 0.61/1e6)
    assert outcome.p_value == pytest.approx(0.0052244, rel=1e-3)


def test_benjamini_hochberg_matches_the_papers_example() -> None:
    # Benjamini & Hochberg (1995), section 4.1: 15 p-values, q = 0.05 rejects the four smallest.
    p = [0.0201, 0.0001, 0.0004, 0.0019, 0.0095, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240,
         0.4262, 0.5719, 0.6528, 0.7590, 1.0000]  # fmt: skip
    rejected = benjamini_hochberg(p, 0.05)
    assert [p[i] for i, r in enumerate(rejected) if r] == [0.0001, 0.0004, 0.0019, 0.0095]
    assert benjamini_hochberg([], 0.05) == [] and benjamini_hochberg([0.5, 0.9], 0.05) == [False, False]


def false_alarm_rate(p_values: list[float], level: float = 0.01) -> float:
    return float(np.mean(np.asarray(p_values) < level))


def test_steady_counts_do_not_alarm_more_than_their_level() -> None:
    rng = np.random.default_rng(16)
    poisson, overdispersed = [], []
    for _ in range(REPLICATES):
        poisson.append(count_test(int(rng.poisson(80)), rng.poisson(80, 4).tolist(), "up").p_value)
        rates = 80 * rng.gamma(100, 1 / 100, 5)  # 10% week-to-week variation, as min_cv assumes
        counts = rng.poisson(rates)
        overdispersed.append(count_test(int(counts[0]), counts[1:].tolist(), "down").p_value)
    assert false_alarm_rate(poisson) <= 0.015
    assert false_alarm_rate(overdispersed) <= 0.02


def test_steady_shares_and_net_scores_do_not_alarm_more_than_their_level() -> None:
    rng = np.random.default_rng(17)
    shares, nets = [], []
    for _ in range(REPLICATES):
        k = rng.binomial(200, 0.05, 5)  # a rare emotion: 5% of 200 texts per window
        shares.append(share_test(int(k[0]), 200, k[1:].tolist(), [200] * 4, "up").p_value)
        split = rng.multinomial(150, [0.5, 0.3, 0.2], 5)  # promoters, passives, detractors
        nets.append(net_test(int(split[0, 0]), int(split[0, 2]), 150, split[1:, 0].tolist(), split[1:, 2].tolist(),
                             [150] * 4, "down").p_value)  # fmt: skip
    assert false_alarm_rate(shares) <= 0.015
    assert false_alarm_rate(nets) <= 0.015


def test_real_changes_are_found() -> None:
    rng = np.random.default_rng(18)
    baseline = rng.multinomial(800, [0.5, 0.3, 0.2], 4)
    dropped = rng.multinomial(800, [0.4, 0.3, 0.3], 1)[0]  # NPS 30 -> 10
    nps = net_test(int(dropped[0]), int(dropped[2]), 800, baseline[:, 0].tolist(), baseline[:, 2].tolist(), [800] * 4, "down")
    assert nps.p_value < 1e-6 and nps.current < nps.expected_low
    anger = share_test(60, 400, [20, 22, 18, 21], [400] * 4, "up")  # 5% -> 15% of texts
    assert anger.p_value < 1e-5 and anger.current_low > anger.expected_high
    assert count_test(240, rng.poisson(80, 4).tolist(), "up").p_value < 1e-10  # 3x volume
