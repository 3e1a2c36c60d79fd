#!/usr/bin/env python3
"""Summarize several bench/repo_bench.sh result files: per phase and tool,
the median wall time (with every run's value), the median CPU time (user +
sys) and, for the s3 store, Garage's, the largest peak RSS, and the median
of the repository bytes added; then the last run's machine limits.

Reads the results table by its header (`| phase | tool | ...`), so files
from before the CPU columns (wall, MB/s, RSS, bytes) read as well."""
import statistics
import sys


def rows(path):
    cols = None
    for line in open(path):
        if not line.startswith("|"):
            cols = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[:2] == ["phase", "tool"]:
            cols = cells
            continue
        if cols is None or len(cells) != len(cols) or not cells[2][:1].isdigit():
            continue
        r = dict(zip(cols, cells))
        yield (r["phase"], r["tool"], float(r["wall s"]), int(r["peak RSS MiB"]), int(r["repo bytes added"]),
               float(r["cpu s"]) if "cpu s" in r else None,
               float(r["garage cpu s"]) if "garage cpu s" in r else None)


def main(paths):
    cells, order = {}, []
    for p in paths:
        for phase, tool, *v in rows(p):
            if (phase, tool) not in cells:
                order.append((phase, tool))
            cells.setdefault((phase, tool), []).append(v)
    first = open(paths[0]).readline().strip()
    for p in paths:
        if "RESTORE DIFFERS" in open(p).read():
            print(f"**A restore differed from the corpus in {p}.**\n")
    print(f"Median of {len(paths)} runs ({', '.join(p.rsplit('/', 1)[-1] for p in paths)}); first: {first}")
    print()
    for line in open(paths[0]):
        if line.startswith("Corpus: "):
            print(line.rstrip() + "\n")
    cpu = any(v[3] is not None for vs in cells.values() for v in vs)
    garage = any(v[4] is not None for vs in cells.values() for v in vs)
    med = lambda xs: statistics.median(x for x in xs if x is not None)
    print("| phase | tool | median wall s | every run's wall s |" + (" median cpu s |" if cpu else "")
          + " largest peak RSS MiB | median repo bytes added |" + (" median garage cpu s |" if garage else ""))
    print("|---|---|---|---|" + ("---|" if cpu else "") + "---|---|" + ("---|" if garage else ""))
    for phase, tool in order:
        v = cells[(phase, tool)]
        walls = [w for w, *_ in v]
        print(f"| {phase} | {tool} | {statistics.median(walls):.3f} | {' '.join(f'{w:.3f}' for w in walls)} |"
              + (f" {med(x[3] for x in v):.2f} |" if cpu else "")
              + f" {max(x[1] for x in v)} | {int(statistics.median(x[2] for x in v)):,} |"
              + (f" {med(x[4] for x in v):.2f} |" if garage else ""))
    last = open(paths[-1]).read()
    if "Machine limits" in last:
        print(f"\nFrom the last run ({paths[-1].rsplit('/', 1)[-1]}):\n")
        print(last[last.index("Machine limits"):].rstrip())


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: median.py RESULT.md...")
    main(sys.argv[1:])
