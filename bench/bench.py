#!/usr/bin/env python3
"""lxdimg beside the reference tools, in one run: throughput ratios and peak RSS.

Every command reads the same file; the best of N runs (default 3) is kept. Peak RSS comes from
wait4() of each child. Targets are the ones in the core issue; a ratio that misses its target is
marked, but the bench itself never fails (it measures, tests assert).
"""
import os, shutil, subprocess, sys, time

D = "bench/data"
LXDIMG = os.environ.get("LXDIMG", "target/release/lxdimg")
RUNS = int(os.environ.get("RUNS", "3"))


def run(cmd, stdin=None):
    """Best wall time of RUNS runs, and peak RSS (KiB) as GNU time measures it (wait4's ru_maxrss
    would include the forked Python's own pages)."""
    best, rss = None, 0
    for _ in range(RUNS):
        fin = open(stdin, "rb") if stdin else subprocess.DEVNULL
        with open("/tmp/lxdimg-bench-rss", "w"):
            pass
        t = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", "/tmp/lxdimg-bench-rss"] + cmd,
                           stdin=fin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dt = time.perf_counter() - t
        if stdin:
            fin.close()
        if p.returncode not in (0, 1):
            sys.exit(f"bench: {' '.join(cmd)} exited {p.returncode}")
        best = dt if best is None else min(best, dt)
        rss = max(rss, int(open("/tmp/lxdimg-bench-rss").read().split()[-1]))
    return best, rss


def run_n(cmd, n):
    global RUNS
    keep, RUNS = RUNS, n
    try:
        return run(cmd)
    finally:
        RUNS = keep


def mb(n):
    return n / 1e6


rows = []


def compare(label, path, ours, ref, target, higher_is_better=True):
    size = os.path.getsize(path)
    t_ours, rss_ours = run(ours)
    t_ref, rss_ref = run(ref)
    ratio = t_ref / t_ours  # >1: lxdimg faster
    ok = ratio >= target if higher_is_better else (t_ours / t_ref) <= target
    shown = ratio if higher_is_better else t_ours / t_ref
    rows.append((label, f"{mb(size) / t_ours:8.1f} MB/s", f"{mb(size) / t_ref:8.1f} MB/s", f"{shown:5.2f}x",
                 f"{'>=' if higher_is_better else '<='} {target}", "ok" if ok else "MISSED", f"{rss_ours / 1024:6.1f} MiB"))


def main():
    tar = f"{D}/debian.tar"
    print(f"input: {tar} ({mb(os.path.getsize(tar)):.0f} MB uncompressed Debian bookworm rootfs image), best of {RUNS}")
    compare("fingerprint 1 GiB vs openssl dgst -sha256", f"{D}/random-1g.bin",
            [LXDIMG, "fingerprint", f"{D}/random-1g.bin"], ["openssl", "dgst", "-sha256", f"{D}/random-1g.bin"], 1.0)
    for ext, tool, target in [("xz", ["xz", "-dc"], 0.8), ("gz", ["gzip", "-dc"], 1.5),
                              ("zst", ["zstd", "-dcq"], 0.35), ("bz2", ["bzip2", "-dc"], 0.8)]:
        f = f"{D}/debian.tar.{ext}"
        compare(f"inspect .tar.{ext} vs {' '.join(tool)}", f, [LXDIMG, "inspect", "--json", f], tool + [f], target)
    # lxdimg make: the proposal read (stops once /bin/sh and os-release are known) and the core's
    # inspection of the made pair (every byte: the fingerprint), beside one sha256sum of the rootfs.
    os.makedirs("/tmp/lxdimg-bench-make", exist_ok=True)
    for ext in ["tar", "tar.gz", "tar.xz", "tar.zst"]:
        f = f"{D}/rootfs.{ext}"
        if os.path.exists(f):
            compare(f"make rootfs.{ext} vs sha256sum", f,
                    [LXDIMG, "make", f, "--out", "/tmp/lxdimg-bench-make", "--template-set", "none"], ["sha256sum", f], 0.0)
    if shutil.which("lxc") and subprocess.run(["lxd", "waitready", "--timeout", "5"], capture_output=True).returncode == 0:
        f = f"{D}/debian.tar.xz"
        quick, _ = run([LXDIMG, "inspect", "--quick", "--json", f])
        t = time.perf_counter()
        out = subprocess.run(["timeout", "600", "lxc", "image", "import", f, "--alias", "lxdimg-bench"], capture_output=True, text=True)
        t_lxd = time.perf_counter() - t
        subprocess.run(["timeout", "120", "lxc", "image", "delete", "lxdimg-bench"], capture_output=True)
        if out.returncode == 0:
            rows.append(("inspect --quick .tar.xz vs lxc image import", f"{quick:8.2f} s", f"{t_lxd:8.2f} s",
                         f"{quick / t_lxd:5.2f}x", "<= 1.0", "ok" if quick <= t_lxd else "MISSED", ""))
    # Rewriting a unified image (lxdimg repair's stream: decode, replace metadata.yaml, re-encode with
    # the same codec and level, hash the output) beside the same decode | encode pipeline of the
    # tools, which writes nothing and hashes nothing. gzip: level 6 (the input's XFL byte says
    # gzip's default); xz -6, zstd -3 (what those tools write by default). One run each for xz.
    meta = f"{D}/meta/metadata.yaml"
    for ext, dec, enc, target, runs in [("gz", "gzip -dc", "gzip -6", 1.5, RUNS), ("zst", "zstd -dcq", "zstd -q -3", None, RUNS),
                                        ("xz", "xz -dc", "xz -6 -T1", None, 1)]:
        f = f"{D}/debian.tar.{ext}"
        out = f"{D}/rewrite-out.tar.{ext}"
        size = os.path.getsize(f)
        t_ours, rss = run_n([LXDIMG, "rewrite", f, "--replace", f"metadata.yaml={meta}", "--out", out], runs)
        t_ref, _ = run_n(["sh", "-c", f"{dec} {f} | {enc} > /dev/null"], runs)
        os.unlink(out)
        ratio = t_ours / t_ref
        rows.append((f"rewrite .tar.{ext} vs {dec} | {enc}", f"{mb(size) / t_ours:8.1f} MB/s", f"{mb(size) / t_ref:8.1f} MB/s",
                     f"{ratio:5.2f}x", f"<= {target}" if target else "(report)",
                     ("ok" if ratio <= target else "MISSED") if target else "", f"{rss / 1024:6.1f} MiB"))
    # Memory: 64 MiB plus the declared decoder window (xz -6: 8 MiB dictionary; zstd -1: 1 MiB window).
    # The 4 GiB stream of zeros is a decompression bomb by the default limits (1 GiB, 100:1); the
    # limit is raised so that this row keeps measuring a whole 4 GiB decode.
    for f, window in [(f"{D}/debian.tar.xz", 8), (f"{D}/big-4g.tar.zst", 8), (f"{D}/debian.tar.gz", 0), (f"{D}/debian.tar.bz2", 1)]:
        limits = ["--max-decoded-bytes", str(8 << 30)] if "big-4g" in f else []
        t, rss = run([LXDIMG, "inspect", "--json", *limits, f])
        limit = 64 + window
        size = os.path.getsize(f)
        rows.append((f"peak RSS inspect {os.path.basename(f)} ({mb(size):.0f} MB)", f"{mb(size) / t:8.1f} MB/s", "", "",
                     f"<= {limit} MiB", "ok" if rss / 1024 <= limit else "MISSED", f"{rss / 1024:6.1f} MiB"))
    w = [max(len(r[i]) for r in rows) for i in range(7)]
    head = ("measurement", "lxdimg", "reference", "ratio", "target", "", "lxdimg RSS")
    w = [max(a, len(b)) for a, b in zip(w, head)]
    for r in [head] + rows:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))


main()
