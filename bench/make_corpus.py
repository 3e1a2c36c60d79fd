#!/usr/bin/env python3
"""Deterministic mixed corpus for the replication benchmark.

make_corpus.py build DIR [--size BYTES] [--seed N]
make_corpus.py mutate DIR [--percent 1] [--seed N]   (any tree: also the Debian corpus)

Shares by bytes: text 20%, CSV 20%, already-compressed 15%, random 15%,
many small files 10%, a few large files (mixed text/random) 20%.
"""
import argparse, gzip, os, random

WORDS = ("kota bontang pusat data layanan warga dinas arsip surat keputusan "
         "kesehatan pendidikan anggaran daerah pemulihan cadangan server").split()

def text(rng, n):
    out, size = [], 0
    while size < n:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 15))) + "\n"
        out.append(line); size += len(line)
    return "".join(out).encode()[:n]

def csv(rng, n):
    out, size, i = ["nik,nama,kelurahan,tanggal,nominal\n"], 0, 0
    while size < n:
        line = f"6474{rng.randrange(10**12):012d},Warga {i},Kelurahan {rng.randint(1,40)},2026-{rng.randint(1,12):02d}-{rng.randint(1,28):02d},{rng.randint(1000,10**7)}\n"
        out.append(line); size += len(line); i += 1
    return "".join(out).encode()[:n]

def build(root, size, seed):
    rng = random.Random(seed)
    os.makedirs(root, exist_ok=True)
    def put(rel, data):
        p = os.path.join(root, rel); os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f: f.write(data)
    per = 16 << 20
    for name, share, gen in (("teks", .20, text), ("csv", .20, csv)):
        total, i = int(size * share), 0
        while total > 0:
            n = min(per, total); put(f"{name}/{i:04d}.{'txt' if name == 'teks' else 'csv'}", gen(rng, n)); total -= n; i += 1
    total, i = int(size * .15), 0
    while total > 0:  # already compressed: gzip of text, until the share is reached
        blob = gzip.compress(text(rng, 4 * per), compresslevel=6)[:min(per, total)]
        put(f"arsip/{i:04d}.gz", blob); total -= len(blob); i += 1
    total, i = int(size * .15), 0
    while total > 0:
        n = min(per, total); put(f"acak/{i:04d}.bin", rng.randbytes(n)); total -= n; i += 1
    total, i = int(size * .10), 0
    while total > 0:  # many small files, nested
        n = min(rng.randint(1024, 16384), total)
        data = text(rng, n) if i % 2 else rng.randbytes(n)
        put(f"kecil/{i // 500:03d}/{(i // 50) % 10}/f{i:06d}.dat", data); total -= n; i += 1
    total, i = int(size * .20), 0
    while total > 0:  # a few large files: a VM-image-like mix
        n = min(128 << 20, total)
        parts, left = [], n
        while left > 0:
            k = min(4 << 20, left); parts.append(text(rng, k) if rng.random() < .5 else rng.randbytes(k)); left -= k
        put(f"besar/disk{i}.img", b"".join(parts)); total -= n; i += 1

def mutate(root, percent, seed):
    rng = random.Random(seed)
    # Regular files only: a symlink (the Debian corpus has thousands, many
    # absolute) must never be written through.
    files = sorted(p for p in (os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
                   if os.path.isfile(p) and not os.path.islink(p))
    total = sum(os.path.getsize(f) for f in files)
    budget = int(total * percent / 100)
    big = [f for f in files if os.path.getsize(f) > 65536]
    while budget > 0:
        f = rng.choice(big); size = os.path.getsize(f)
        n = min(rng.randint(4096, 65536), budget, size)
        at = rng.randrange(0, size - n + 1)
        with open(f, "r+b") as h:
            h.seek(at); h.write(rng.randbytes(n))
        budget -= n
    os.makedirs(os.path.join(root, "kecil"), exist_ok=True)
    for i in range(20):
        with open(os.path.join(root, f"kecil/baru{seed}_{i}.txt"), "wb") as h:
            h.write(text(rng, rng.randint(1000, 8000)))

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["build", "mutate"]); ap.add_argument("dir")
    ap.add_argument("--size", type=int, default=1 << 30); ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--percent", type=float, default=1.0)
    a = ap.parse_args()
    build(a.dir, a.size, a.seed) if a.mode == "build" else mutate(a.dir, a.percent, a.seed)
