#!/usr/bin/env python3
"""Statistics of a benchmark corpus, and a metadata comparison of a restore.

stats.py summary DIR [--packages FILE]   Markdown lines: counts, bytes, a
    file-size histogram and the sha256 of the sorted listing (below)
stats.py listing DIR                     the listing itself
stats.py compare ORIGINAL RESTORED       which entries differ in type, mode,
    owner, size, mtime or link target (file contents: use diff -r)

The listing has one line per entry under DIR (DIR itself excluded), sorted
by path: `path type size mode`, type f (regular file), d, l (symlink) or o
(anything else), size in bytes for files and symlinks (a symlink's is its
target's length) and 0 for directories (a directory's own size depends on
the file system's history, not on its entries), mode the permission bits
in octal (with setuid, setgid, sticky), symlinks followed by ` -> target`.
No mtimes, owners or contents: two trees with the same listing hash have
the same shape, not necessarily the same bytes.
"""
import hashlib, os, stat, sys

BUCKETS = [(1 << 10, "< 1 KiB"), (4 << 10, "1–4 KiB"), (16 << 10, "4–16 KiB"),
           (64 << 10, "16–64 KiB"), (1 << 20, "64 KiB–1 MiB"), (None, "≥ 1 MiB")]


def walk(root):
    """(relative path, lstat) of every entry under root, root excluded."""
    out = []
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            out.append((os.path.relpath(p, root), os.lstat(p)))
    out.sort(key=lambda e: os.fsencode(e[0]))
    return out


def kind(st):
    m = st.st_mode
    return "f" if stat.S_ISREG(m) else "d" if stat.S_ISDIR(m) else "l" if stat.S_ISLNK(m) else "o"


def listing(root):
    for rel, st in walk(root):
        k = kind(st)
        size = 0 if k == "d" else st.st_size
        line = f"{rel} {k} {size} {stat.S_IMODE(st.st_mode):o}"
        if k == "l":
            line += " -> " + os.readlink(os.path.join(root, rel))
        yield line


def summary(root, packages=None):
    entries = walk(root)
    count = {"f": 0, "d": 0, "l": 0, "o": 0}
    hist = [[0, 0] for _ in BUCKETS]
    total = linked = 0
    for _, st in entries:
        k = kind(st)
        count[k] += 1
        if k != "f":
            continue
        total += st.st_size
        linked += st.st_nlink > 1
        for i, (limit, _) in enumerate(BUCKETS):
            if limit is None or st.st_size < limit:
                hist[i][0] += 1; hist[i][1] += st.st_size
                break
    h = hashlib.sha256()
    for line in listing(root):
        h.update(os.fsencode(line) + b"\n")
    print(f"- {count['f']:,} files ({linked:,} of them with more than one hard link), "
          f"{count['d']:,} directories, {count['l']:,} symlinks, {count['o']:,} other entries; "
          f"{total:,} bytes in files")
    print(f"- listing sha256 (sorted `path type size mode`, no mtimes; bench/corpus/stats.py): {h.hexdigest()}")
    if packages:
        data = open(packages, "rb").read()
        lines = data.count(b"\n")
        print(f"- installed packages: {lines:,}, list sha256 "
              f"{hashlib.sha256(data).hexdigest()} ({os.path.basename(packages)})")
    print()
    print("| file size | files | bytes |")
    print("|---|---|---|")
    for (_, name), (n, b) in zip(BUCKETS, hist):
        print(f"| {name} | {n:,} | {b:,} |")


def compare(a, b):
    def meta(root):
        out = {}
        for rel, st in walk(root):
            k = kind(st)
            out[rel] = {"type": k, "mode": stat.S_IMODE(st.st_mode), "owner": (st.st_uid, st.st_gid),
                        "size": 0 if k == "d" else st.st_size, "mtime": int(st.st_mtime),
                        "target": os.readlink(os.path.join(root, rel)) if k == "l" else None}
        return out
    ma, mb = meta(a), meta(b)
    missing = sorted(set(ma) - set(mb)); extra = sorted(set(mb) - set(ma))
    fields = {}
    for rel in sorted(set(ma) & set(mb)):
        for f, v in ma[rel].items():
            if mb[rel][f] != v:
                fields.setdefault(f, []).append(rel)
    if not (missing or extra or fields):
        print(f"identical metadata ({len(ma):,} entries: type, mode, owner, size, mtime, link target)")
        return 0
    parts = [f"{len(missing):,} missing (e.g. {missing[0]})"] if missing else []
    parts += [f"{len(extra):,} extra (e.g. {extra[0]})"] if extra else []
    parts += [f"{f} differs on {len(v):,} (e.g. {v[0]})" for f, v in sorted(fields.items())]
    print(f"metadata of {len(ma):,} entries: " + "; ".join(parts))
    return 1


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) >= 2 and a[0] == "summary":
        summary(a[1], a[3] if len(a) == 4 and a[2] == "--packages" else None)
    elif len(a) == 2 and a[0] == "listing":
        for line in listing(a[1]):
            print(line)
    elif len(a) == 3 and a[0] == "compare":
        sys.exit(compare(a[1], a[2]))
    else:
        sys.exit(__doc__)
