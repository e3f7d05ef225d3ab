"""The tests behind alerts: one per kind of metric, each comparing a window with its baseline.

Every test asks one question: is the window's value further from the baseline,
in the bad direction, than the baseline's own variation explains? Each answers
with a one-sided p-value and the numbers a reader needs (value and interval in
the window, the range expected if nothing changed, n on both sides, z).

* Counts (volume): the baseline windows' counts give a Poisson-gamma posterior
  for the rate; the window's count is tested against its posterior
  predictive, a negative binomial. Counts vary between weeks more than Poisson
  does (campaigns, weather): the extra variance is the baseline windows' own
  spread, pooled with a floor of ``min_cv`` (see PRIOR_DF).
* Shares (CSAT top-2-box, share of anger or urgency): the window's k of n is
  tested against a beta-binomial whose beta has the baseline share as its mean
  and, as its variance, the baseline's sampling error plus the between-window
  variation of the share (at least ``min_sd`` points for a share near 50%,
  scaled down like a binomial's spread for rarer ones). Exact for small n and
  rare emotions.
* Net scores (NPS, net sentiment): share of the good minus share of the bad
  end of a three-way split. One response contributes +1, 0 or -1, so its
  variance is p+ + p- - (p+ - p-)^2; the difference window - baseline is
  standardised with that variance on both sides plus the between-window
  variation (at least ``min_sd`` points) and read on the normal curve.
* Many series are tested at once: Benjamini-Hochberg keeps the share of false
  alarms among the alarms of one evaluation at ``q``; the detector sets ``q``
  from a false-alarm budget per week (pipeline/alerts/detect.py).

Values are in the metric's own unit: a count, or percent / points (x100).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from scipy import stats

Direction = Literal["up", "down"]
LEVEL = 0.95  # every interval here is a 95% interval
_TAIL = (1 - LEVEL) / 2
# Four baseline windows estimate their own spread poorly (3 degrees of freedom): the estimate is
# pooled with the floor as a prior worth PRIOR_DF degrees of freedom (a scaled inverse chi-square
# prior centred on the floor; its posterior scale), and never goes below the floor.
PRIOR_DF = 4.0


@dataclass(frozen=True)
class Outcome:
    """One test's numbers: the window against what the baseline expects."""

    current: float  # the window's value
    current_low: float  # its 95% interval
    current_high: float
    expected: float  # the baseline's value
    expected_low: float  # where the window's value falls 95% of the time if nothing changed
    expected_high: float
    n: int  # what the window's value rests on
    baseline_n: int  # what the baseline rests on, all baseline windows together
    score: float  # standardised difference (z): negative below, positive above the baseline
    p_value: float  # one-sided, in the tested direction


def _one_sided(lower_tail: float, upper_tail: float, direction: Direction) -> float:
    return float(min(1.0, max(0.0, upper_tail if direction == "up" else lower_tail)))


def count_test(current: int, baseline: Sequence[int], direction: Direction, min_cv: float = 0.1) -> Outcome:
    """Volume: the window's count against the negative binomial the baseline windows predict."""
    if not baseline:
        raise ValueError("a count test needs at least one baseline window")
    counts = np.asarray(baseline, dtype=float)
    k = len(counts)
    mean = (counts.sum() + 0.5) / k  # Jeffreys: a baseline of zeros still predicts a small rate
    extra = counts.var(ddof=1) - mean if k > 1 else 0.0  # beyond Poisson
    per_window = mean + _pooled(extra, k, (min_cv * mean) ** 2)  # a window's variance around the true rate
    variance = per_window * (1 + 1 / k)  # plus the uncertainty of the mean of k windows
    size, prob = mean**2 / (variance - mean), mean / variance
    lower = float(stats.nbinom.cdf(current, size, prob))
    upper = float(stats.nbinom.sf(current - 1, size, prob))
    expected_low, expected_high = stats.nbinom.ppf([_TAIL, 1 - _TAIL], size, prob)
    low = stats.chi2.ppf(_TAIL, 2 * current) / 2 if current > 0 else 0.0  # Garwood's exact Poisson interval
    high = stats.chi2.ppf(1 - _TAIL, 2 * current + 2) / 2
    return Outcome(
        current=float(current), current_low=float(low), current_high=float(high),
        expected=float(mean), expected_low=float(expected_low), expected_high=float(expected_high),
        n=int(current), baseline_n=int(counts.sum()),
        score=float((current - mean) / math.sqrt(variance)), p_value=_one_sided(lower, upper, direction),
    )  # fmt: skip


def _pooled(estimate: float, windows: int, floor: float) -> float:
    """A between-window variance from ``windows`` baseline windows, pooled with the floor (PRIOR_DF)."""
    if windows < 2:
        return floor
    own_df = windows - 1
    return max(floor, (PRIOR_DF * floor + own_df * max(0.0, estimate)) / (PRIOR_DF + own_df))


def _between_variance(values: np.ndarray, sampling: np.ndarray, floor: float) -> float:
    """Variance of the true value between windows beyond sampling noise (method of moments), pooled."""
    if len(values) < 2:
        return floor
    return _pooled(float(values.var(ddof=1) - sampling.mean()), len(values), floor)


def share_test(
    hits: int, n: int, baseline_hits: Sequence[int], baseline_n: Sequence[int], direction: Direction,
    min_sd: float = 2.0,
) -> Outcome:  # fmt: skip
    """A share (k of n, in %): beta-binomial predictive from the baseline windows' k_i of n_i."""
    base_k, base_n = np.asarray(baseline_hits, dtype=float), np.asarray(baseline_n, dtype=float)
    if n <= 0 or base_n.sum() <= 0:
        raise ValueError("a share test needs responses in the window and in the baseline")
    total_k, total_n = base_k.sum(), base_n.sum()
    p0 = (total_k + 0.5) / (total_n + 1)
    used = base_n > 0
    shares = base_k[used] / base_n[used]
    floor = min_sd / 100 * 2 * math.sqrt(p0 * (1 - p0))  # min_sd at 50%, less for rarer shares (as a binomial sd)
    between = _between_variance(shares, p0 * (1 - p0) / base_n[used], floor**2)
    variance = p0 * (1 - p0) / total_n + between * (1 + 1 / max(1, used.sum()))
    concentration = max(p0 * (1 - p0) / variance - 1, 1e-6)
    # The whole predictive distribution at once: both tails summed from the pmf (exact, and fast for any n).
    pmf = stats.betabinom.pmf(np.arange(n + 1), n, p0 * concentration, (1 - p0) * concentration)
    cdf, sf = np.cumsum(pmf), np.cumsum(pmf[::-1])[::-1]
    lower, upper = float(cdf[hits]), float(sf[hits])
    expected_low, expected_high = np.searchsorted(cdf, [_TAIL, 1 - _TAIL])
    low, high = stats.beta.ppf([_TAIL, 1 - _TAIL], hits + 0.5, n - hits + 0.5)  # Jeffreys interval
    return Outcome(
        current=100 * hits / n, current_low=100 * float(low), current_high=100 * float(high),
        expected=100 * p0, expected_low=100 * float(expected_low) / n, expected_high=100 * float(min(expected_high, n)) / n,
        n=int(n), baseline_n=int(total_n),
        score=float((hits / n - p0) / math.sqrt(p0 * (1 - p0) / n + variance)), p_value=_one_sided(lower, upper, direction),
    )  # fmt: skip


def net_variance(good: float, bad: float, n: float) -> float:
    """Variance of one response scored +1 / 0 / -1 (promoter, passive, detractor), over n responses."""
    p_good, p_bad = good / n, bad / n
    return (p_good + p_bad - (p_good - p_bad) ** 2) / n


def net_test(
    good: int, bad: int, n: int, baseline_good: Sequence[int], baseline_bad: Sequence[int],
    baseline_n: Sequence[int], direction: Direction, min_sd: float = 2.0,
) -> Outcome:  # fmt: skip
    """A net score (NPS, net sentiment; in points): z on the difference, three-way split variance."""
    base_g, base_b, base_n = (np.asarray(a, dtype=float) for a in (baseline_good, baseline_bad, baseline_n))
    total_n = base_n.sum()
    if n <= 0 or total_n <= 0:
        raise ValueError("a net-score test needs responses in the window and in the baseline")
    expected = (base_g.sum() - base_b.sum()) / total_n
    per_response = net_variance(base_g.sum(), base_b.sum(), total_n) * total_n
    used = base_n > 0
    values = (base_g[used] - base_b[used]) / base_n[used]
    between = _between_variance(values, per_response / base_n[used], (min_sd / 100) ** 2)
    # Under "no change" the window's responses split like the baseline's: its variance comes from there.
    predictive_var = per_response / n + per_response / total_n + between * (1 + 1 / max(1, used.sum()))
    current = (good - bad) / n
    z = (current - expected) / math.sqrt(predictive_var)
    # The window's own interval, with half a response added to each of the three parts.
    smoothed = net_variance(good + 0.5, bad + 0.5, n + 1.5)
    half = stats.norm.ppf(1 - _TAIL) * math.sqrt(smoothed)
    spread = stats.norm.ppf(1 - _TAIL) * math.sqrt(predictive_var)
    return Outcome(
        current=100 * current, current_low=100 * max(-1.0, current - half), current_high=100 * min(1.0, current + half),
        expected=100 * expected, expected_low=100 * max(-1.0, expected - spread), expected_high=100 * min(1.0, expected + spread),
        n=int(n), baseline_n=int(total_n),
        score=float(z), p_value=_one_sided(float(stats.norm.cdf(z)), float(stats.norm.sf(z)), direction),
    )  # fmt: skip


def benjamini_hochberg(p_values: Sequence[float], q: float) -> list[bool]:
    """Which hypotheses to reject so that the expected share of false ones among them is at most q."""
    m = len(p_values)
    if m == 0:
        return []
    order = np.argsort(p_values, kind="stable")
    ranked = np.asarray(p_values, dtype=float)[order]
    passing = np.nonzero(ranked <= q * np.arange(1, m + 1) / m)[0]
    rejected = np.zeros(m, dtype=bool)
    if len(passing):
        rejected[order[: passing[-1] + 1]] = True
    return rejected.tolist()
