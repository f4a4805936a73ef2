"""Type stubs of the planner's C core (passes/planning/_dsa.c)."""

from collections.abc import Sequence

def greedy(
    lower: Sequence[int],
    upper: Sequence[int],
    size: Sequence[int],
    alignment: Sequence[int],
    order: Sequence[int],
    fixed: Sequence[int],
    best_fit: bool,
) -> tuple[list[int], int]: ...
def solve(
    lower: Sequence[int],
    upper: Sequence[int],
    size: Sequence[int],
    alignment: Sequence[int],
    capacity: int,
    time_limit: float,
    max_nodes: int,
    heuristics: Sequence[str],
) -> tuple[str, list[int] | None, int]: ...
