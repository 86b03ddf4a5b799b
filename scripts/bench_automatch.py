"""Benchmark: automatch on the synthetic labelled roster (not a test; prints figures).

CPU time (``time.process_time``) of ``propose`` for n app clients against n QBO customers, the
median of several runs, then precision on the applied set and recall on the rest for several seeds.
Usage:

    .venv/bin/python scripts/bench_automatch.py [--n 2000] [--runs 5] [--seeds 20260505,1,2,3,4]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

from shared.mapping.automatch import MatchProposal, propose
from tests.roster import Roster, make_roster


def _cpu(roster: Roster) -> tuple[float, MatchProposal]:
    start = time.process_time()
    proposal = propose(roster.app, roster.qbo, kind="client")
    return time.process_time() - start, proposal


def _figures(roster: Roster, proposal: MatchProposal) -> dict[str, float]:
    correct = sum(roster.truth[m.app_id] == m.qbo_id for m in proposal.applied)
    rest = [a for a in proposal.unmatched if roster.truth[a] is not None]
    ids = {a: [s.qbo_id for s in proposal.suggestions[a]] for a in rest}
    top1 = sum(ids[a][:1] == [roster.truth[a]] for a in rest)
    top3 = sum(roster.truth[a] in ids[a] for a in rest)
    return {
        "applied": len(proposal.applied),
        "precision": correct / len(proposal.applied) if proposal.applied else 1.0,
        "rest": len(rest),
        "top1": top1 / len(rest) if rest else 1.0,
        "top3": top3 / len(rest) if rest else 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seeds", default="20260505,1,2,3,4")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]

    start = time.process_time()
    roster = make_roster(args.n, seed=seeds[0])
    built = time.process_time() - start
    times = []
    for _ in range(args.runs):
        seconds, proposal = _cpu(roster)
        times.append(seconds)
    print(f"roster: {len(roster.app)} app clients x {len(roster.qbo)} QBO customers (built in {built:.3f} s)")
    print(
        f"propose CPU time: median {statistics.median(times):.3f} s over {args.runs} runs "
        f"(min {min(times):.3f}, max {max(times):.3f})"
    )
    pairs = len(roster.app) * len(roster.qbo)
    print(f"pairs scored in full: {proposal.pairs_scored} of {pairs} ({proposal.pairs_scored / pairs:.2%})")
    held = Counter(proposal.held_back.values())
    print("held back: " + ", ".join(f"{reason} {count}" for reason, count in held.most_common()))
    print()
    print(f"{'seed':>10} {'applied':>8} {'precision':>9} {'rest':>6} {'top-1':>7} {'top-3':>7}")
    for seed in seeds:
        sample = roster if seed == seeds[0] else make_roster(args.n, seed=seed)
        figures = _figures(sample, propose(sample.app, sample.qbo, kind="client"))
        print(
            f"{seed:>10} {figures['applied']:>8.0f} {figures['precision']:>9.3f} {figures['rest']:>6.0f} "
            f"{figures['top1']:>7.3f} {figures['top3']:>7.3f}"
        )
    print("\nrest = app clients with a QBO counterpart that were not applied; top-k = the right customer")
    print("is among the first k suggestions.")


if __name__ == "__main__":
    main()
