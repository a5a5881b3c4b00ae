"""Is one model's accuracy really different from another's on the same images? McNemar's test.

Only the images where exactly one of the two models is right carry information: b (only A right) and
c (only B right). Without a real difference each of those is a coin toss, so the exact two-sided
binomial test of b against b + c gives the p-value (the exact form of McNemar's test, right for small
counts too).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

SIGNIFICANCE_LEVEL = 0.05


@dataclass
class McNemar:
    only_a: int      # images only model A gets right
    only_b: int      # images only model B gets right
    both: int
    neither: int
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < SIGNIFICANCE_LEVEL

    def in_words(self, name_a: str, name_b: str) -> str:
        n = self.only_a + self.only_b + self.both + self.neither
        diff = (self.only_a - self.only_b) / n if n else 0.0
        leader, other = (name_a, name_b) if diff >= 0 else (name_b, name_a)
        disagree = (f"Of {n:,} images, {self.only_a:,} are right only with {name_a} and {self.only_b:,} only with "
                    f"{name_b}.")
        if self.only_a == self.only_b:
            return f"{disagree} Neither model is ahead (McNemar's exact test, p = {self.p_value:.2f})."
        chance = f"{self.p_value:.1e}" if self.p_value < 0.001 else f"{self.p_value:.3f}"
        if self.significant:
            return (f"{disagree} {leader} is ahead by {100 * abs(diff):.2f} points, and the difference is "
                    f"statistically significant (McNemar's exact test, p = {chance}): a split this uneven would "
                    f"arise by chance less than {SIGNIFICANCE_LEVEL:.0%} of the time if the models were equally good.")
        return (f"{disagree} {leader} is ahead by {100 * abs(diff):.2f} points, but the difference is not "
                f"statistically significant (McNemar's exact test, p = {chance}): two equally good models would "
                f"differ this much {self.p_value:.0%} of the time. Don't rank {leader} above {other} on this alone.")


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemar:
    """McNemar's exact test on two models' per-image correctness (bool arrays over the same images)."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"the models were scored on different images ({a.shape} vs {b.shape})")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return McNemar(only_a, only_b, int((a & b).sum()), int((~a & ~b).sum()), float(p))
