"""Maximum-weight matching of two lists (the Hungarian algorithm), for order-insensitive arrays."""

from __future__ import annotations

from typing import Sequence


def _hungarian(weights: Sequence[Sequence[float]]) -> list[int]:
    """Column of each row in a maximum-weight assignment of an ``n x m`` matrix with ``n <= m``.

    The O(n^2 m) shortest-augmenting-path form of the Hungarian algorithm (Kuhn-Munkres) with
    potentials, minimising the negated weights.
    """
    n, m = len(weights), len(weights[0])
    inf = float("inf")
    u, v = [0.0] * (n + 1), [0.0] * (m + 1)
    owner, way = [0] * (m + 1), [0] * (m + 1)  # owner[j]: row (1-based) holding column j
    for row in range(1, n + 1):
        owner[0] = row
        col0 = 0
        min_slack, used = [inf] * (m + 1), [False] * (m + 1)
        while True:
            used[col0] = True
            row0, delta, col1 = owner[col0], inf, 0
            for col in range(1, m + 1):
                if not used[col]:
                    slack = -weights[row0 - 1][col - 1] - u[row0] - v[col]
                    if slack < min_slack[col]:
                        min_slack[col], way[col] = slack, col0
                    if min_slack[col] < delta:
                        delta, col1 = min_slack[col], col
            for col in range(m + 1):
                if used[col]:
                    u[owner[col]] += delta
                    v[col] -= delta
                else:
                    min_slack[col] -= delta
            col0 = col1
            if owner[col0] == 0:
                break
        while col0:
            col1 = way[col0]
            owner[col0] = owner[col1]
            col0 = col1
    assignment = [-1] * n
    for col in range(1, m + 1):
        if owner[col]:
            assignment[owner[col] - 1] = col - 1
    return assignment


def max_weight_matching(weights: Sequence[Sequence[float]]) -> list[tuple[int, int]]:
    """Pairs ``(row, col)`` of a one-to-one matching with the largest total weight.

    Weights must be >= 0; pairs of weight 0 are left out (they add nothing). Only the ``n`` best
    columns of each row can matter (n = number of rows), so other columns are dropped before the
    cubic step: a long hostile list costs O(n * m) here, not O(m^3).
    """
    n = len(weights)
    m = len(weights[0]) if n else 0
    if n == 0 or m == 0:
        return []
    if n > m:
        transposed = [[weights[r][c] for r in range(n)] for c in range(m)]
        return [(r, c) for c, r in max_weight_matching(transposed)]
    keep: set[int] = set()
    for row in weights:
        best = sorted((c for c in range(m) if row[c] > 0), key=lambda c: -row[c])[:n]
        keep.update(best)
    if not keep:
        return []
    cols = sorted(keep)
    reduced = [[row[c] for c in cols] for row in weights]
    if len(cols) < n:
        pairs = [(r, c) for c, r in max_weight_matching([[reduced[r][c] for r in range(n)]
                                                        for c in range(len(cols))])]
    else:
        pairs = list(enumerate(_hungarian(reduced)))
    return [(r, cols[c]) for r, c in pairs if c >= 0 and reduced[r][c] > 0]
