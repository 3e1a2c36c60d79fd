#!/usr/bin/env python3
"""Summarize several bench/repo_bench.sh result files: per phase and tool,
the median wall time (with every run's value), the largest peak RSS, and
the median of the repository bytes added; then the last run's machine
limits."""
import statistics
import sys


def rows(path):
    for line in open(path):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or cells[0] in ("phase", "---") or not cells[2][:1].isdigit():
            continue
        phase, tool, wall, _mbs, rss, added = cells
        yield phase, tool, float(wall), int(rss), int(added)


def main(paths):
    cells, order = {}, []
    for p in paths:
        for phase, tool, wall, rss, added in rows(p):
            if (phase, tool) not in cells:
                order.append((phase, tool))
            cells.setdefault((phase, tool), []).append((wall, rss, added))
    first = open(paths[0]).readline().strip()
    for p in paths:
        if "RESTORE DIFFERS" in open(p).read():
            print(f"**A restore differed from the corpus in {p}.**\n")
    print(f"Median of {len(paths)} runs ({', '.join(p.rsplit('/', 1)[-1] for p in paths)}); first: {first}")
    print()
    print("| phase | tool | median wall s | every run's wall s | largest peak RSS MiB | median repo bytes added |")
    print("|---|---|---|---|---|---|")
    for phase, tool in order:
        v = cells[(phase, tool)]
        walls = [w for w, _, _ in v]
        print(f"| {phase} | {tool} | {statistics.median(walls):.3f} | {' '.join(f'{w:.3f}' for w in walls)} "
              f"| {max(r for _, r, _ in v)} | {int(statistics.median(a for _, _, a in v)):,} |")
    last = open(paths[-1]).read()
    if "Machine limits" in last:
        print(f"\nFrom the last run ({paths[-1].rsplit('/', 1)[-1]}):\n")
        print(last[last.index("Machine limits"):].rstrip())


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: median.py RESULT.md...")
    main(sys.argv[1:])
