#!/usr/bin/env python3
"""`pulih benchmark` beside core/examples/limits.rs, in alternating rounds.

bench/benchmark_vs_limits.py CORPUS_DIR [--rounds 15] [--pulih BIN]
    [--limits BIN] [--before BIN] [--json OUT]

limits.rs times the stages on CORPUS_DIR's files (bench/make_corpus.py's
corpus); `pulih benchmark --json` on its own generated data of the same
size (the corpus's size rounded down to whole MiB). Each round runs every
tool once, in turn, so a shared machine's busy spells fall on all of them;
each figure is already the best of three passes within a run. Prints every
round, then per figure the median and the best over the rounds and the
benchmark's difference from limits.rs in %. `--before BIN` adds another
limits binary (e.g. one built before a change) as a third column.
"""
import argparse, json, os, re, statistics, subprocess

FIGURES = ["chunking", "hashing", "compression", "encryption", "decompression", "bound"]
here = os.path.dirname(os.path.abspath(__file__))


def limits(bin, corpus):
    out = subprocess.run([bin, corpus, "2"], capture_output=True, text=True, check=True).stdout
    return dict(zip(FIGURES, (float(x) for x in re.findall(r": (\d+) MB/s", out))))


def benchmark(bin, size):
    out = subprocess.run([bin, "benchmark", "--json", "--cores", "2", "--size", str(size)],
                         capture_output=True, text=True, check=True).stdout
    cpu = json.loads(out)["cpu"]
    return {f: cpu[("backup_bound" if f == "bound" else f) + "_mbs"] for f in FIGURES}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--pulih", default=os.path.join(here, "../target/release/pulih"))
    ap.add_argument("--limits", default=os.path.join(here, "../target/release/examples/limits"))
    ap.add_argument("--before")
    ap.add_argument("--json")
    a = ap.parse_args()
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(a.corpus) for f in fs)
    size = size >> 20 << 20
    tools = {"limits": lambda: limits(a.limits, a.corpus)}
    if a.before:
        tools["limits-before"] = lambda: limits(a.before, a.corpus)
    tools["benchmark"] = lambda: benchmark(a.pulih, size)
    res = {t: [] for t in tools}
    for r in range(a.rounds):
        for t, run in tools.items():
            res[t].append(run())
        print(f"round {r + 1}: " + "; ".join(
            f"{t} " + " ".join(f"{res[t][-1][f]:.0f}" for f in FIGURES) for t in tools), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f)
    for name, stat in (("median", statistics.median), ("best", max)):
        print(f"\n{name} of {a.rounds} rounds, MB/s (bound: 2 cores):")
        print("| figure | " + " | ".join(tools) + " | benchmark vs limits |")
        print("|---" * (len(tools) + 2) + "|")
        for f in FIGURES:
            v = {t: stat(x[f] for x in res[t]) for t in tools}
            diff = 100 * (v["benchmark"] - v["limits"]) / v["limits"]
            print(f"| {f} | " + " | ".join(f"{v[t]:.0f}" for t in tools) + f" | {diff:+.1f} % |")


if __name__ == "__main__":
    main()
