"""Run every benchmark, one after the other, each in its own process (its own PostgreSQL and sandbox).

    .venv/bin/python -m benchmarks.run_all [--quick] [--only api_calls,db_writes]

``--quick`` uses tiny sizes (the whole set in well under a minute); without it the full sizes of BENCHMARKS.md
(several minutes). Prints each benchmark's output, then every RESULT line again as a summary. Exit status 1
when a benchmark failed or printed no results.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ["api_calls", "db_writes", "scale", "hourly_job", "tick", "analytics", "orchestration", "responsiveness",
              "export", "growth", "first_retention"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or BENCHMARKS
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks: {sorted(unknown)}; known: {BENCHMARKS}")
    summary: list[str] = []
    failed: list[str] = []
    started = time.perf_counter()
    for name in names:
        cmd = [sys.executable, "-m", f"benchmarks.{name}"] + (["--quick"] if args.quick else [])
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=str(REPO_ROOT), capture_output=True, text=True)
        seconds = time.perf_counter() - t
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0:
            sys.stdout.write(proc.stderr[-4000:])
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        ok = proc.returncode == 0 and lines and f"BENCHMARK {name} done" in proc.stdout
        if not ok:
            failed.append(name)
        summary.append(f"--- {name}: {'ok' if ok else 'FAILED'} in {seconds:.1f} s")
        summary.extend(lines)
        sys.stdout.flush()
    print("\n=== summary ===")
    print("\n".join(summary))
    print(f"=== all benchmarks: {time.perf_counter() - started:.1f} s"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
