"""The gate's in-process decision time over the labelled corpus (issue #14).

    python -m tests.perf.bench_gate_corpus

Uncached: a new gate per pass, so each call is parsed, classified and evaluated by Cedar; cached: the
same gate again (the analysis and the verdict come from its LRU caches). Goal: p99 <= 1 ms uncached.
Writes `tests/perf/results/gate_corpus.json`.
"""

from __future__ import annotations

import json
import time

from tests.perf.stats import summarize, write
from tests.validation.scoring import ANSWER, HOME, TMPDIR, corpus, default_gate


def main() -> None:
    items = list(corpus())
    env = {"HOME": HOME, "TMPDIR": TMPDIR}
    uncached: list[float] = []
    cached: list[float] = []
    for _ in range(3):
        gate = default_gate()
        for samples in (uncached, cached):
            for item in items:
                began = time.perf_counter()
                decided = gate.decide("bench", "agent", item["tool_name"], item["tool_input"], item["cwd"], env)
                samples.append((time.perf_counter() - began) * 1000)
                assert ANSWER[decided.decision] == item["expect"], item
    figures = {"cases": len(items), "uncached": summarize(uncached), "cached": summarize(cached)}
    print(json.dumps(figures, indent=2))
    print(f"wrote {write('gate_corpus', figures)}")


if __name__ == "__main__":
    main()
