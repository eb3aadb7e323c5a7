"""Mutation score of the last ``benchmarks/mutation.sh`` run, per module.

Reads mutmut's result files (``mutants/**/*.py.meta``) for the mutants
matching the glob patterns given on the command line (all when none) and
prints, per module, how many were killed, survived, timed out or had no
test, the score ``killed / (all - no tests)`` (timeouts count as killed, as
in mutmut), and the names of the survivors (``mutmut show NAME`` shows the
diff of one).  ``--sample N PATTERN...`` prints a fixed random sample of N
mutant names instead.  Standard library only.
"""

from __future__ import annotations

import fnmatch
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
          36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout", None: "not checked",
          37: "caught by type check"}


def results(patterns: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        for name, code in json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"].items():
            if not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns):
                found[name] = STATUS.get(code, "suspicious")
    return found


def module_of(name: str) -> str:
    return name.split(".x", 1)[0]


def main(patterns: list[str]) -> int:
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: list[str] = []
    for name, status in sorted(results(patterns).items()):
        by_module[module_of(name)][status] += 1
        if status in ("survived", "suspicious", "not checked"):
            survivors.append(f"{status}: {name}")
    total: Counter[str] = Counter()
    print(f"{'module':42} {'mutants':>7} {'killed':>7} {'survived':>8} {'timeout':>7} {'no tests':>8} {'score':>6}")
    for module, counts in sorted(by_module.items()):
        total.update(counts)
        print(_row(module, counts))
    print(_row("total", total))
    print("\n".join(survivors))
    return 0


def _row(label: str, counts: Counter[str]) -> str:
    tested = sum(counts.values()) - counts["no tests"] - counts["skipped"] - counts["not checked"]
    killed = counts["killed"] + counts["timeout"] + counts["caught by type check"]
    score = f"{100 * killed / tested:.1f}%" if tested else "-"
    return (f"{label:42} {sum(counts.values()):7d} {counts['killed']:7d} {counts['survived']:8d} "
            f"{counts['timeout']:7d} {counts['no tests']:8d} {score:>6}")


def sample(count: int, patterns: list[str]) -> int:
    """Print a fixed random sample (seed 13) of ``count`` mutant names matching
    the patterns: a module too large to run in full is scored on it."""
    names = sorted(results(patterns))
    print("\n".join(random.Random(13).sample(names, min(count, len(names)))))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--sample"]:
        sys.exit(sample(int(sys.argv[2]), sys.argv[3:]))
    sys.exit(main(sys.argv[1:]))
