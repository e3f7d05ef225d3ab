"""Why it changed, in customers' words: terms over-represented in the window against the baseline.

Weighted log-odds with an informative Dirichlet prior (Monroe, Colaresi and
Quinn 2008, "Fightin' Words", Political Analysis 16(4), eq. 16-22): for a term
w with count y_w of n tokens in the window (i) and in the baseline (j), and a
prior alpha_w from the background (both together) scaled to alpha_0 tokens
(alpha_w = alpha_0 * background share of w),

    delta_w = log((y_iw + a_w) / (n_i + a_0 - y_iw - a_w)) - log((y_jw + a_w) / (n_j + a_0 - y_jw - a_w))
    var(delta_w) ~ 1 / (y_iw + a_w) + 1 / (y_jw + a_w),   z_w = delta_w / sqrt(var)

The prior shrinks rare terms toward the background, so a word said twice does
not outrank one said two hundred times, and z accounts for how often each was
said. Terms are lower-cased words and two-word phrases (no stop words, no PII
placeholders such as [EMAIL]), counted once per text.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

_WORD = re.compile(r"[^\W\d_](?:[\w'’-]*\w)?", re.UNICODE)
_BREAK = re.compile(r"\[[A-Z_]+\]|[.,;:!?()\[\]{}\"“”…/|]+|\s[-–—]\s")
# alpha_0, how many tokens the background prior is worth: a tenth of the texts compared, at most
# 500 (Monroe et al.'s choice for corpora far larger than an alert's window).
PRIOR_SHARE = 0.1
PRIOR_TOKENS = 500.0
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been before being below
    between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each few
    for from further get got had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself
    him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself just let's me more most
    mustn't my myself no nor not of off on once only or other ought our ours ourselves out over own same shan't she
    she'd she'll she's should shouldn't so some such than that that's the their theirs them themselves then there
    there's these they they'd they'll they're they've this those through to too under until up very was wasn't we
    we'd we'll we're we've were weren't what what's when when's where where's which while who who's whom why why's
    with won't would wouldn't you you'd you'll you're you've your yours yourself yourselves im ive dont cant didnt
    doesnt isnt wasnt also will one would really even much many still well us rt amp""".split()
)


@dataclass(frozen=True)
class Term:
    """A word or phrase said more (z > 0) in the window than in the baseline."""

    term: str
    z: float  # Monroe et al.'s z-score of the weighted log-odds
    log_odds: float
    window_count: int
    baseline_count: int


def tokens(text: str) -> list[str]:
    """Lower-cased words, PII placeholders and numbers left out."""
    return [w for part in _clauses(text) for w in part]


def _clauses(text: str) -> list[list[str]]:
    """Words by clause: punctuation and PII placeholders end a clause (no phrase spans them)."""
    return [
        [w.lower().replace("’", "'") for w in _WORD.findall(part)]
        for part in _BREAK.split(text or "")
    ]


def terms(text: str) -> list[str]:
    """Words and two-word phrases of adjacent words in one clause, stop words left out."""
    found: list[str] = []
    for words in _clauses(text):
        useful = [w not in STOP_WORDS and len(w) > 1 for w in words]
        found += [w for w, ok in zip(words, useful) if ok]
        found += [f"{a} {b}" for a, b, ok_a, ok_b in zip(words, words[1:], useful, useful[1:]) if ok_a and ok_b]
    return found


def count_terms(texts: Iterable[str]) -> Counter[str]:
    """In how many texts each term occurs (once per text: one long rant does not outvote many customers)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(set(terms(text)))
    return counts


def weighted_log_odds(window: Counter[str], baseline: Counter[str], prior_tokens: float | None = None) -> dict[str, Term]:
    """Every term's z-scored log-odds ratio, window against baseline, with the informative prior."""
    background = window + baseline
    total = sum(background.values())
    if total == 0:
        return {}
    if prior_tokens is None:
        prior_tokens = min(PRIOR_TOKENS, PRIOR_SHARE * total)
    n_i, n_j = sum(window.values()), sum(baseline.values())
    result = {}
    for term, count in background.items():
        alpha = prior_tokens * count / total
        y_i, y_j = window.get(term, 0), baseline.get(term, 0)
        delta = math.log((y_i + alpha) / (n_i + prior_tokens - y_i - alpha)) - math.log(
            (y_j + alpha) / (n_j + prior_tokens - y_j - alpha)
        )
        z = delta / math.sqrt(1 / (y_i + alpha) + 1 / (y_j + alpha))
        result[term] = Term(term, z, delta, y_i, y_j)
    return result


def over_represented(window_texts: Sequence[str], baseline_texts: Sequence[str], limit: int = 10, min_count: int = 2) -> list[Term]:
    """The terms most over-represented in the window (z > 1.96, said at least ``min_count`` times)."""
    scored = weighted_log_odds(count_terms(window_texts), count_terms(baseline_texts))
    rising = [t for t in scored.values() if t.z > 1.96 and t.window_count >= min_count]
    return sorted(rising, key=lambda t: (-t.z, t.term))[:limit]


def representative(texts: Sequence[str], top: Sequence[Term], limit: int = 3) -> list[str]:
    """The texts that say most of the over-represented terms, for their length; each text once.
    When too few say any, the rest come in the order given (callers pass the most typical first)."""
    weight = {t.term: t.z for t in top}
    candidates = list(dict.fromkeys(t for t in texts if t and 15 <= len(t) <= 400))
    scored = []
    for text in candidates:
        found = set(terms(text)) & weight.keys()
        if found:
            scored.append((sum(weight[w] for w in found) / math.sqrt(len(tokens(text)) or 1), text))
    chosen = [text for _, text in sorted(scored, key=lambda s: (-s[0], s[1]))[:limit]]
    return chosen + [t for t in candidates if t not in chosen][: limit - len(chosen)]
