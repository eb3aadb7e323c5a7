"""What the plugin adds to a pytest run that checks no model.

Runs ``pytest --collect-only`` on a generated project with no marked tests,
with the plugin (installed, so pytest loads it) and with ``-p no:softmax``,
alternating the two so both see the same machine load, and prints the
median wall time of each and their ratio.  Then runs each mode once more in
process and lists which heavy libraries ended up in ``sys.modules``.

Usage::

    python benchmarks/bench_startup.py [--quick] [--files 50] [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("tensorflow", "keras", "numpy", "hypothesis")
MODES = {"with plugin": [], "-p no:softmax": ["-p", "no:softmax"]}

PROBE = """
import json, sys
import pytest
code = pytest.main(sys.argv[1:])
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))
sys.exit(int(code))
"""


def make_project(root: Path, files: int) -> None:
    (root / "pytest.ini").write_text("[pytest]\nsoftmax_max_examples = 50\n")
    for i in range(files):
        tests = "\n".join(f"def test_{i}_{j}():\n    assert {j} + 1 > {j}\n" for j in range(10))
        (root / f"test_module_{i}.py").write_text(tests)


def collect(root: Path, extra: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *extra],
        cwd=root, check=True, capture_output=True,
    )
    return time.perf_counter() - started


def heavy_modules(root: Path, extra: list[str]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "--collect-only", "-q", "-p", "no:cacheprovider", *extra],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout
    loaded = json.loads(out.strip().splitlines()[-1])
    return [m for m in HEAVY if m in loaded]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 repeats instead of 15")
    parser.add_argument("--files", type=int, default=50, help="test modules in the project (10 tests each)")
    parser.add_argument("--repeats", type=int, default=None)
    opts = parser.parse_args(argv)
    repeats = opts.repeats or (5 if opts.quick else 15)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_project(root, opts.files)
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        for mode, extra in MODES.items():  # warm the file system cache
            collect(root, extra)
        for _ in range(repeats):
            for mode, extra in MODES.items():
                times[mode].append(collect(root, extra))
        medians = {mode: statistics.median(values) for mode, values in times.items()}
        modules = {mode: heavy_modules(root, extra) for mode, extra in MODES.items()}

    ratio = medians["with plugin"] / medians["-p no:softmax"]
    print(f"pytest --collect-only, {opts.files * 10} tests in {opts.files} files, median of {repeats}:")
    for mode, median in medians.items():
        print(f"  {mode}: {median * 1e3:.0f} ms; heavy modules imported: {', '.join(modules[mode]) or 'none'}")
    print()
    print("| measure | measured (median) | target |")
    print("|---|---|---|")
    print(f"| start-up, `pytest --collect-only` with plugin vs `-p no:softmax` | "
          f"{medians['with plugin'] * 1e3:.0f} ms vs {medians['-p no:softmax'] * 1e3:.0f} ms "
          f"= {ratio:.3f}× | ≤ 1.05× |")
    print(f"| heavy libraries imported by a plain run (with plugin) | "
          f"{', '.join(modules['with plugin']) or 'none'} | none of tensorflow, keras, numpy |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
