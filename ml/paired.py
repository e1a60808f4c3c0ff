"""Paired statistics for two models scored on the same drawings (no scipy needed).

On each drawing both models are right, both wrong, or they disagree. Only the
disagreements say which model is better: `b` drawings production gets right and the
candidate wrong, `c` the reverse. Given n = b + c disagreements, b is binomial(n, p);
the candidate is no worse when p = 1/2 (McNemar's test, exact form).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ binomial(n, p), exact."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    # Sum in log space: n is at most a golden set's size, terms never underflow as a whole.
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * log_p
        + (n - i) * log_q
        for i in range(k, n + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ binomial(n, p), exact."""
    return binomial_tail(n - k, n, 1.0 - p)  # the failures' upper tail


@dataclass(frozen=True)
class Pairs:
    """Counts of the drawings two models were scored on together."""

    n: int  # drawings
    candidate_hits: int
    production_hits: int
    b: int  # production right, candidate wrong
    c: int  # candidate right, production wrong

    @classmethod
    def count(cls, candidate: list[bool], production: list[bool]) -> Pairs:
        if len(candidate) != len(production):
            raise ValueError(f"{len(candidate)} candidate hits for {len(production)} production")
        b = sum(1 for x, y in zip(candidate, production, strict=True) if y and not x)
        c = sum(1 for x, y in zip(candidate, production, strict=True) if x and not y)
        return cls(len(candidate), sum(candidate), sum(production), b, c)

    @property
    def drop(self) -> float:
        """Production top-1 minus candidate top-1 (positive: the candidate is worse)."""
        return (self.b - self.c) / self.n if self.n else 0.0

    def p_drop_above(self, tolerance: float) -> float:
        """One-sided p-value of "the candidate's top-1 is lower by more than `tolerance`".

        A drop of d with n disagreements among N drawings means p = (1 + d N / n) / 2; the
        test is binomial on b against p0 = (1 + tolerance N / n) / 2, taking the number of
        disagreements as fixed. With tolerance 0 this is the exact one-sided McNemar test.
        """
        discordant = self.b + self.c
        if discordant == 0:
            return 1.0
        p0 = (1.0 + tolerance * self.n / discordant) / 2.0
        return binomial_tail(self.b, discordant, p0) if p0 < 1.0 else 1.0

    def p_better(self) -> float:
        """One-sided exact McNemar p-value of "the candidate is better" (p < 1/2)."""
        return binomial_tail(self.c, self.b + self.c, 0.5)


def wilson_interval(hits: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% (by default) Wilson score interval of a proportion; (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    phat = hits / n
    denominator = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denominator
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
