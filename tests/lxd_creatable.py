#!/usr/bin/env python3
"""Differential test: can the real LXD 5.0.2 create an instance from an image it imported?

For every case (generated at run time, nothing binary is committed) the image is
imported into a running LXD through its REST API (same requests as
tests/lxd_differential.py), then an instance is created from it with
POST /1.0/instances {"name": N, "source": {"type": "image", "fingerprint": FP}}
(`lxc init`: it unpacks the image into a stopped instance; starting is not
needed), and {import_ok, init_ok, init_error} is recorded.  Instance and image
are deleted afterwards, and files orphaned under /var/lib/lxd are removed.

The result is compared with `report.verdicts["lxd-5.0"].creatable`
({ok, error, code}) of `lxdimg inspect --json FILE [ROOTFS]`:
  * LXD init_ok must equal creatable.ok; `null` counts as agreement only for VM
    images (printed as such);
  * when both fail, the failure class must match: both LXD's init_error and
    lxdimg's error/code are mapped to a class by classify() below, and the
    classes must be equal (lxdimg's code is printed next to LXD's error).
Cases that LXD does not import are skipped and reported (the import side is
tested by tests/lxd_differential.py).

Usage:
  python3 tests/lxd_creatable.py --lxd-only        # record LXD results -> tests/lxd_creatable_expected.jsonl
  python3 tests/lxd_creatable.py                   # live comparison with lxdimg
  python3 tests/lxd_creatable.py --from-expected tests/lxd_creatable_expected.jsonl
                                                   # compare lxdimg with recorded LXD results (no daemon)
  python3 tests/lxd_creatable.py -k gz_ --keep /tmp/cases
  python3 tests/lxd_creatable.py --list
Environment: LXDIMG (default target/release/lxdimg), LXD_SOCKET, LXD_IMAGES_DIR,
LXD_POOL_DIR (default /var/lib/lxd/storage-pools/default).
"""

from __future__ import annotations

import argparse
import bz2
import dataclasses
import hashlib
import http.client
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lxd_differential import (  # noqa: E402
    BASE, D, E, F, LXD, LXDError, IMAGES_DIR, META_XZ, ROOTFS, SOCKET, bz, det_bytes, gz, lzma_alone, meta,
    multipart, qcow2, raw_member, remove_orphans, resolve_lxdimg, select, split, squashfs, std, tar, xz, zst,
    _corrupt_member_checksum,
)
from lxd_differential import open_sources, run_lxdimg as inspect_json  # noqa: E402
import lxd_differential as ld  # noqa: E402  (the daemon chosen with --daemon: ld.SOCKET, ld.TARGET, …)

POOL_DIR = Path(os.environ.get("LXD_POOL_DIR", "/var/lib/lxd/storage-pools/default"))
VAR_DIR = Path("/var/lib/lxd")


def use_daemon(name: str):
    global POOL_DIR, VAR_DIR
    ld.use_daemon(name)
    if name == "incus":
        VAR_DIR = Path("/var/lib/incus")
        POOL_DIR = VAR_DIR / "storage-pools/default"
DEFAULT_OUT = Path(__file__).resolve().parent / "lxd_creatable_expected.jsonl"

# ---------------------------------------------------------------------------
# Failure classes (shared by LXD's init_error and lxdimg's error/code)
# ---------------------------------------------------------------------------

# (class, regexes matched against LXD's error text / lxdimg's error text, regexes matched against lxdimg's code)
CLASSES = [
    ("vm-unsupported", [r'Instance type "virtual-machine" is not supported'], [r"vm", r"virtual"]),
    ("arch", [r"[Aa]rchitecture isn't supported", r"Requested architecture"], [r"arch"]),
    ("squashfs", [r"unsquashfs", r"[Ss]quashfs", r"File system corruption", r"FATAL ERROR", r"read_block"], [r"squash"]),
    ("qcow2", [r"qemu-img", r"Unexpected image format", r"Unsupported image format", r"qcow"], [r"qcow", r"image.?format"]),
    ("unsupported-compression", [r"Unsupported compression"], [r"unsupported"]),
    ("tar-path", [r"Member name contains '\.\.'", r"[Rr]emoving leading", r"unsafe", r"outside"], [r"path", r"dotdot", r"unsafe"]),
    ("trailing-garbage", [r"trailing garbage", r"[Tt]railing", r"[Uu]nknown frame descriptor",
                          r"not in gzip format", r"zstd: .*unsupported format", r"[Ff]ile format not recognized", r"not a valid bzip2",
                          r"garbage"],
     [r"trailing", r"garbage"]),
    ("truncated", [r"[Uu]nexpected end", r"[Uu]nexpected EOF", r"ends unexpectedly", r"[Tt]runcated", r"premature", r"[Cc]ompressed data is truncated"],
     [r"trunc", r"eof", r"end-of-archive", r"eoa", r"short"]),
    ("compressed-data", [r"CRC", r"crc", r"invalid compressed data", r"[Cc]ompressed data is corrupt",
                         r"[Dd]ata integrity", r"corrupt", r"format violated", r"[Dd]ecoding error"],
     [r"crc", r"corrupt", r"checksum-comp", r"deflate", r"compressed", r"integrity"]),
    ("tar-header", [r"[Ss]kipping to next header", r"header", r"[Cc]hecksum"], [r"header", r"tar-checksum"]),
    ("missing-rootfs", [r"missing a rootfs"], [r"rootfs"]),
]


# lxdimg codes that are coarser than the classes: code substring -> LXD classes it stands for
CODE_ACCEPTS = {
    "decode-error": {"compressed-data", "truncated", "trailing-garbage"},
    "trailing-data": {"trailing-garbage", "compressed-data"},  # xz/lzma report trailing bytes as "Compressed data is corrupt"
    "tar-error": {"truncated", "tar-header", "tar-path"},
    "architecture": {"arch"},
    "qcow2": {"qcow2"},
    "squashfs": {"squashfs"},
}
UNPACK_CLASSES = {"truncated", "compressed-data", "trailing-garbage", "tar-header", "tar-path", "squashfs", "unpack"}


def classify(text: Optional[str], code: Optional[str] = None) -> Optional[str]:
    """Class of a failure: from lxdimg's code if given, else from the error text.

    Only the tool output is looked at (what follows "Process exited with non-zero value N (" in LXD's
    message: the command line contains the instance name), line by line, first match wins, so the
    decompressor's own line decides over tar's lines."""
    if code:
        for cls, _, code_res in CLASSES:
            if any(re.search(r, code, re.I) for r in code_res):
                return cls
    if text:
        if "Failed to run: unsquashfs" in text:
            return "squashfs"
        m = re.search(r"Process exited with non-zero value \d+ \(", text)
        if m is None and re.search(r"Process exited with non-zero value \d+$", text):
            return "unpack"  # LXD lost the tool's stderr (happens at random): any unpack class matches
        body = text[m.end():] if m else text
        if m and re.fullmatch(r"\s*(xz|gzip|bzip2|zstd|tar)?:?\s*\)?\s*", body):
            return "unpack"  # LXD kept only the first word of the tool's stderr (also at random)
        # The decompressor's lines first, wherever they come: tar's own lines (even one printed
        # earlier, e.g. "Skipping to next header" on garbage a corrupt deflate stream produced)
        # are consequences of it.
        lines = body.splitlines()
        for line in [x for x in lines if not x.startswith("tar:")] + [x for x in lines if x.startswith("tar:")]:
            for cls, text_res, _ in CLASSES:
                if any(re.search(r, line) for r in text_res):
                    return cls
        return "other"
    return None


# ---------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------

MTIME = 1458040200


def text_blob(n: int, seed: int = 7) -> bytes:
    """Compressible but non-trivial text (deflate uses Huffman blocks, not stored ones)."""
    import random
    r = random.Random(seed)
    words = [b"alpha", b"bravo", b"charlie", b"delta", b"echo", b"foxtrot", b"golf", b"hotel", b"india",
             b"juliet", b"kilo", b"lima", b"mike", b"november", b"oscar", b"papa", b"%d" % 12345]
    out = bytearray()
    while len(out) < n:
        out += r.choice(words) + (b"\n" if r.random() < 0.1 else b" ")
    return bytes(out[:n])


BIG = 256 * 1024


def big_tar(big: bytes | None = None, extra_after: list[E] | None = None) -> bytes:
    """metadata.yaml, rootfs/, rootfs/hello, rootfs/big (256 KiB random), rootfs/zz + end-of-archive."""
    return tar(std(BASE) + [F("rootfs/big", det_bytes(BIG) if big is None else big), F("rootfs/zz", "zz\n")]
               + (extra_after or []))


def tar_offsets(t: bytes) -> list[tuple[int, str, int]]:
    """[(header offset, name, size)] for the members of a (GNU, no long names) tar."""
    out, off = [], 0
    while off + 512 <= len(t):
        h = t[off:off + 512]
        if h == b"\x00" * 512:
            break
        name = h[:100].split(b"\x00")[0].decode()
        size = int(h[124:136].strip(b"\x00 ") or b"0", 8)
        out.append((off, name, size))
        off += 512 + (size + 511) // 512 * 512
    return out


def member_off(t: bytes, name: str) -> tuple[int, int]:
    for off, n, size in tar_offsets(t):
        if n == name:
            return off, size
    raise KeyError(name)


def no_eoa(t: bytes) -> bytes:
    """Strip the end-of-archive zero blocks (and tarfile's record padding)."""
    offs = tar_offsets(t)
    off, _, size = offs[-1]
    return t[:off + 512 + (size + 511) // 512 * 512]


def cut_in_data(t: bytes) -> bytes:
    off, size = member_off(t, "rootfs/big")
    return t[:off + 512 + size // 2]


def cut_in_header(t: bytes) -> bytes:
    off, _ = member_off(t, "rootfs/zz")
    return t[:off + 200]


def cut_on_boundary(t: bytes) -> bytes:
    off, _ = member_off(t, "rootfs/zz")
    return t[:off]


def gz_bad_crc(b: bytes) -> bytes:
    g = bytearray(gz(b))
    g[-8] ^= 0xFF
    return bytes(g)


def gz_bad_isize(b: bytes) -> bytes:
    g = bytearray(gz(b))
    g[-2] ^= 0x01
    return bytes(g)


def corrupt_middle(g: bytes, n: int = 8, seed: Optional[int] = None) -> bytes:
    """`n` bytes at 2/3 of a compressed stream flipped (or, with a seed, replaced by random bytes)."""
    import random
    g, r = bytearray(g), random.Random(seed)
    mid = len(g) * 2 // 3
    for i in range(mid, mid + n):
        g[i] = r.randrange(256) if seed is not None else g[i] ^ 0xA5
    return bytes(g)


def one_zero_block(t: bytes) -> bytes:
    return no_eoa(t) + b"\x00" * 512


def sq_rootfs(w: Path, comp: str = "xz", extra: tuple = ()) -> bytes:
    files = {"hello": b"hello\n", "etc/": b""}
    files.update({f"data/f{i:03d}": text_blob(4096, i) for i in range(200)})
    return squashfs(w, files, comp, extra)


def sparse_tar(w: Path, fmt: tuple) -> bytes:
    """A unified image whose rootfs holds a sparse file with many data regions (like lastlog),
    packed by GNU tar with -S in the given format."""
    src = Path(tempfile.mkdtemp(dir=w, prefix="sparse-"))
    try:
        (src / "rootfs/var/log").mkdir(parents=True)
        (src / "metadata.yaml").write_text(BASE)
        with open(src / "rootfs/var/log/lastlog", "wb") as f:
            for i in range(30):  # 30 data regions: old GNU needs extension blocks
                f.seek(i * 65536)
                f.write(b"x" * 700)
            f.truncate(40 * 65536)
        out = subprocess.run(["tar", "-S", *fmt, "--numeric-owner", "--owner=0", "--group=0", "--mtime=@1458040200",
                              "-C", str(src), "-cf", "-", "metadata.yaml", "rootfs"],
                             check=True, stdout=subprocess.PIPE).stdout
        return gz(out)
    finally:
        shutil.rmtree(src, ignore_errors=True)


def sq_corrupt_inode(w: Path) -> bytes:
    s = bytearray(sq_rootfs(w))
    inode_start = struct.unpack_from("<Q", s, 64)[0]
    # first metadata block header (2 bytes) then compressed data: flip bytes inside the compressed data
    for i in range(inode_start + 2 + 8, inode_start + 2 + 24):
        s[i] ^= 0x5A
    return bytes(s)


def raw_long_tar(*members: bytes) -> bytes:
    return b"".join(members) + b"\x00" * 1024


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Case:
    name: str
    desc: str
    build: Callable[[Path], object]  # -> bytes (unified) or (meta, rootfs, part) (split)
    ext: str = ".tar.gz"
    expect: Optional[str] = None  # expected class of the init failure; None = creatable ("?" = unknown)
    vm: bool = False
    needs: Optional[str] = None
    lxdimg_args: tuple = ()


def cases() -> list[Case]:
    C: list[Case] = []

    def add(name, desc, build, ext=".tar.gz", expect=None, **kw):
        C.append(Case(name, desc, build, ext, expect, **kw))

    # ---- valid ----
    add("ok_gzip", "tar.gz", lambda w: gz(big_tar()))
    add("ok_gzip_multimember", "two concatenated gzip members", lambda w: (lambda t: gz(t[:700]) + gz(t[700:]))(big_tar()))
    add("ok_xz", "tar.xz", lambda w: xz(big_tar()), ".tar.xz")
    add("ok_bzip2", "tar.bz2", lambda w: bz(big_tar()), ".tar.bz2")
    add("ok_zstd", "tar.zst", lambda w: zst(big_tar()), ".tar.zst", needs="zstd")
    add("ok_lzma", "tar.lzma (lzma-alone)", lambda w: lzma_alone(big_tar()), ".tar.lzma")
    add("ok_tar_plain", "uncompressed GNU tar", lambda w: big_tar(), ".tar")
    add("ok_dot_slash", "./metadata.yaml, ./rootfs/...",
        lambda w: gz(tar([D("./"), F("./metadata.yaml", BASE), D("./rootfs/"), F("./rootfs/hello", "hi\n"),
                          F("./rootfs/big", det_bytes(BIG))])))
    add("ok_split_squashfs", "meta.tar.xz + rootfs.squashfs", lambda w: split(META_XZ(), sq_rootfs(w)), ".tar.xz",
        needs="mksquashfs")
    # issue 8: a squashfs rootfs in every compressor unsquashfs reads, and GNU sparse members
    for comp in ("gzip", "lzma", "lzo", "lz4", "xz", "zstd"):
        add(f"ok_split_squashfs_{comp}", f"meta.tar.xz + rootfs.squashfs (-comp {comp})",
            lambda w, c=comp: split(META_XZ(), sq_rootfs(w, c)), ".tar.xz", needs="mksquashfs")
    add("ok_split_squashfs_zstd_1m", "meta.tar.xz + rootfs.squashfs (-comp zstd -b 1M -Xcompression-level 19)",
        lambda w: split(META_XZ(), sq_rootfs(w, "zstd", ("-b", "1M", "-Xcompression-level", "19"))), ".tar.xz",
        needs="mksquashfs")
    for label, fmt in [("gnu", ("--format=gnu",)), ("pax_0_0", ("--format=posix", "--sparse-version=0.0")),
                       ("pax_0_1", ("--format=posix", "--sparse-version=0.1")),
                       ("pax_1_0", ("--format=posix", "--sparse-version=1.0"))]:
        add(f"ok_sparse_{label}", f"GNU tar -S {' '.join(fmt)}: a sparse file with 30 data regions",
            lambda w, f=fmt: sparse_tar(w, f))
    add("junk_after_xz", "valid .tar.xz + 4 KiB junk (import reads it, unpack fails)",
        lambda w: xz(big_tar()) + det_bytes(4096, 9), ".tar.xz")
    add("ok_split_tar_xz", "meta.tar.xz + rootfs.tar.xz", lambda w: split(META_XZ(), xz(tar([F("hello", "hi\n"), D("etc/")]))),
        ".tar.xz")
    add("ok_split_tar_gz", "meta.tar.gz + rootfs.tar.gz", lambda w: split(gz(tar([F("metadata.yaml", BASE)])),
                                                                          gz(tar([F("hello", "hi\n"), D("etc/")]))))
    add("ok_i686", "architecture: i686 on an x86_64 host", lambda w: gz(tar(std(meta("i686")))))
    add("ok_i386_alias", "architecture: i386 (alias of i686)", lambda w: gz(tar(std(meta("i386")))))
    add("gz_trailing_junk_140", "tar.gz + 140 bytes 'junk' (the existing import case)",
        lambda w: gz(tar(std(BASE))) + b"junk" * 35, expect="?")

    # ---- truncation (several cut points) ----
    add("xz_stream_cut_half", "tar.xz, compressed stream cut in half", lambda w: (lambda g: g[:len(g) // 2])(xz(big_tar())),
        ".tar.xz", "truncated")
    add("gz_stream_cut_half", "tar.gz, compressed stream cut in half", lambda w: (lambda g: g[:len(g) // 2])(gz(big_tar())),
        expect="truncated")
    add("gz_stream_cut_trailer", "tar.gz without its last 4 bytes (ISIZE)", lambda w: gz(big_tar())[:-4], expect="truncated")
    add("bz_stream_cut", "tar.bz2 (100k blocks, -1) cut at 3/4: metadata is in the first, complete block",
        lambda w: (lambda g: g[:len(g) * 3 // 4])(bz2.compress(big_tar(), 1)), ".tar.bz2", "truncated")
    add("zst_stream_cut_half", "tar.zst, compressed stream cut in half",
        lambda w: (lambda g: g[:len(g) // 2])(zst(big_tar())), ".tar.zst", "truncated", needs="zstd")
    add("tar_cut_in_data", "plain tar cut inside rootfs/big's data", lambda w: cut_in_data(big_tar()), ".tar", "truncated")
    add("tar_cut_in_header", "plain tar cut inside the rootfs/zz header", lambda w: cut_in_header(big_tar()), ".tar",
        "truncated")
    add("tar_cut_hdr_plus1", "plain tar cut 1 byte into the rootfs/zz header (partial last block)",
        lambda w: (lambda t: t[:member_off(t, "rootfs/zz")[0] + 1])(big_tar()), ".tar", "?")
    add("tar_cut_hdr_plus511", "plain tar cut 511 bytes into the rootfs/zz header",
        lambda w: (lambda t: t[:member_off(t, "rootfs/zz")[0] + 511])(big_tar()), ".tar", "?")
    add("tar_cut_after_hdr", "plain tar cut right after the complete rootfs/zz header (its 3 data bytes missing)",
        lambda w: (lambda t: t[:member_off(t, "rootfs/zz")[0] + 512])(big_tar()), ".tar", "truncated")
    add("tar_cut_data_aligned", "plain tar cut inside rootfs/big's data on a 512-byte boundary",
        lambda w: (lambda t: t[:member_off(t, "rootfs/big")[0] + 512 + 4096])(big_tar()), ".tar", "truncated")
    add("tar_eoa_partial", "plain tar: one zero block + 188 bytes of the second",
        lambda w: no_eoa(big_tar()) + b"\x00" * 700, ".tar", "?")
    add("tar_cut_on_boundary", "plain tar cut exactly on a header boundary (before rootfs/zz)",
        lambda w: cut_on_boundary(big_tar()), ".tar", "?")
    add("tar_no_eoa", "plain tar, all members complete, no end-of-archive blocks", lambda w: no_eoa(big_tar()), ".tar", "?")
    add("tar_one_zero_block", "plain tar ending in a single zero block", lambda w: one_zero_block(big_tar()), ".tar", "?")
    add("xz_tar_cut_in_data", "complete xz stream of a tar cut inside rootfs/big's data",
        lambda w: xz(cut_in_data(big_tar())), ".tar.xz", "truncated")
    add("xz_tar_cut_in_header", "complete xz stream of a tar cut inside a header",
        lambda w: xz(cut_in_header(big_tar())), ".tar.xz", "truncated")
    add("xz_tar_no_eoa", "complete xz stream of a tar without end-of-archive blocks",
        lambda w: xz(no_eoa(big_tar())), ".tar.xz", "?")
    add("gz_tar_cut_in_data", "complete gzip stream of a tar cut inside rootfs/big's data",
        lambda w: gz(cut_in_data(big_tar())), expect="truncated")
    add("gz_tar_cut_in_header", "complete gzip stream of a tar cut inside a header",
        lambda w: gz(cut_in_header(big_tar())), expect="truncated")
    add("gz_tar_cut_on_boundary", "complete gzip stream of a tar cut on a header boundary",
        lambda w: gz(cut_on_boundary(big_tar())), expect="?")
    add("gz_tar_one_zero_block", "gzip of a tar ending in a single zero block", lambda w: gz(one_zero_block(big_tar())),
        expect="?")

    # ---- corrupt compressed data ----
    add("gz_bad_crc", "tar.gz with a wrong CRC32 trailer", lambda w: gz_bad_crc(big_tar()), expect="compressed-data")
    add("gz_bad_isize", "tar.gz with a wrong ISIZE trailer", lambda w: gz_bad_isize(big_tar()), expect="compressed-data")
    add("gz_corrupt_deflate", "tar.gz (compressible rootfs/big) with 8 bytes flipped at 2/3",
        lambda w: corrupt_middle(gz(big_tar(text_blob(1024 * 1024)))), expect="compressed-data")
    add("gz_corrupt_deflate_format", "tar.gz (compressible rootfs/big) with 64 random bytes at 2/3 (format violated)",
        lambda w: corrupt_middle(gz(big_tar(text_blob(1024 * 1024))), 64, 7), expect="compressed-data")
    add("xz_corrupt_middle", "tar.xz (compressible rootfs/big) with 8 bytes flipped at 2/3",
        lambda w: corrupt_middle(xz(big_tar(text_blob(1024 * 1024)))), ".tar.xz", "compressed-data")

    # ---- trailing bytes after the compressed stream ----
    add("gz_trailing_garbage_4k", "tar.gz + 4 KiB random", lambda w: gz(big_tar()) + det_bytes(4096, 3),
        expect="trailing-garbage")
    add("gz_trailing_zeros_4k", "tar.gz + 4 KiB zeros", lambda w: gz(big_tar()) + b"\x00" * 4096, expect="?")
    add("gz_trailing_zeros_3", "tar.gz + 3 zeros", lambda w: gz(big_tar()) + b"\x00" * 3, expect="?")
    add("gz_trailing_zeros_then_garbage", "tar.gz + 1 KiB zeros + 'junk'", lambda w: gz(big_tar()) + b"\x00" * 1024 + b"junk",
        expect="?")
    add("xz_trailing_garbage_4k", "tar.xz + 4 KiB random", lambda w: xz(big_tar()) + det_bytes(4096, 4), ".tar.xz",
        "trailing-garbage")
    add("xz_trailing_zeros_4k", "tar.xz + 4096 zeros (valid xz stream padding)", lambda w: xz(big_tar()) + b"\x00" * 4096,
        ".tar.xz", "?")
    add("xz_trailing_zeros_3", "tar.xz + 3 zeros (not a multiple of 4)", lambda w: xz(big_tar()) + b"\x00" * 3, ".tar.xz", "?")
    add("xz_trailing_zeros_4098", "tar.xz + 4098 zeros (not a multiple of 4)", lambda w: xz(big_tar()) + b"\x00" * 4098,
        ".tar.xz", "?")
    add("bz_trailing_garbage_4k", "tar.bz2 + 4 KiB random", lambda w: bz(big_tar()) + det_bytes(4096, 5), ".tar.bz2", "?")
    add("bz_trailing_zeros_4k", "tar.bz2 + 4 KiB zeros", lambda w: bz(big_tar()) + b"\x00" * 4096, ".tar.bz2", "?")
    add("zst_trailing_garbage_4k", "tar.zst + 4 KiB random", lambda w: zst(big_tar()) + det_bytes(4096, 6), ".tar.zst",
        "trailing-garbage", needs="zstd")
    add("zst_trailing_zeros_4k", "tar.zst + 4 KiB zeros", lambda w: zst(big_tar()) + b"\x00" * 4096, ".tar.zst", "?",
        needs="zstd")
    add("lzma_trailing_garbage_4k", "tar.lzma + 4 KiB random", lambda w: lzma_alone(big_tar()) + det_bytes(4096, 8),
        ".tar.lzma", "?")

    # ---- tar structure after the early-stop point ----
    add("gz_tar_bad_checksum_after", "gzipped tar, corrupt header checksum of rootfs/zz (after what import reads)",
        lambda w: gz(_corrupt_member_checksum(big_tar(), 4)), expect="tar-header")
    add("tar_bad_checksum_after", "plain tar, corrupt header checksum of rootfs/zz",
        lambda w: _corrupt_member_checksum(big_tar(), 4), ".tar", "tar-header")
    add("gz_dotdot_member", "rootfs/../../escape member after rootfs/",
        lambda w: gz(tar(std(BASE) + [F("rootfs/../../escape", "x\n")])), expect="?")
    add("gz_abs_member", "absolute member /rootfs/abs after rootfs/", lambda w: gz(tar(std(BASE) + [F("/rootfs/abs", "x\n")])),
        expect="?")
    add("gz_abs_etc_member", "absolute member /etc/lxdimg-abs-test", lambda w: gz(tar(std(BASE) + [F("/etc/lxdimg-abs-test", "x\n")])),
        expect="?")
    add("gz_dotdot_inner", "rootfs/a/../b member (.. inside rootfs/)",
        lambda w: gz(tar(std(BASE) + [F("rootfs/a/../b", "x\n")])), expect="?")
    add("gz_device_member", "character device rootfs/dev/null + rootfs/dev2/zero",
        lambda w: gz(_with_devices(tar(std(BASE)))), expect="?")

    # ---- architecture ----
    add("arch_aarch64", "architecture: aarch64 on an x86_64 host", lambda w: gz(tar(std(meta("aarch64")))), expect="arch")
    add("arch_arm64_alias", "architecture: arm64 (alias) on an x86_64 host", lambda w: gz(tar(std(meta("arm64")))),
        expect="arch")
    add("arch_armv7l", "architecture: armv7l on an x86_64 host", lambda w: gz(tar(std(meta("armv7l")))), expect="arch")

    # ---- split rootfs problems ----
    add("split_squashfs_cut_half", "meta + squashfs cut in half",
        lambda w: split(META_XZ(), (lambda s: s[:len(s) // 2])(sq_rootfs(w))), ".tar.xz", "squashfs", needs="mksquashfs")
    add("split_squashfs_corrupt_inode", "meta + squashfs with corrupt bytes in the inode table",
        lambda w: split(META_XZ(), sq_corrupt_inode(w)), ".tar.xz", "squashfs", needs="mksquashfs")
    add("split_squashfs_arm64", "meta aarch64 + valid squashfs", lambda w: split(META_XZ(meta("aarch64")), sq_rootfs(w)),
        ".tar.xz", "arch", needs="mksquashfs")
    add("split_garbage_rootfs", "meta + garbage rootfs as part 'rootfs' (API)",
        lambda w: split(META_XZ(), b"this is not a filesystem\n" * 40), ".tar.xz", "?", lxdimg_args=("--type", "container"))
    add("split_qcow2_as_container", "meta + qcow2 as part 'rootfs' (API)", lambda w: split(META_XZ(), qcow2(w)), ".tar.xz",
        "?", needs="qemu-img", lxdimg_args=("--type", "container"))
    add("split_rootfs_tar_xz_cut", "meta + rootfs.tar.xz cut in half",
        lambda w: split(META_XZ(), (lambda g: g[:len(g) // 2])(xz(tar([F("hello", "hi\n"), F("big", det_bytes(BIG))])))),
        ".tar.xz", "truncated")
    add("split_rootfs_tar_gz_garbage", "meta + rootfs.tar.gz + 4 KiB garbage",
        lambda w: split(META_XZ(), gz(tar([F("hello", "hi\n"), F("big", det_bytes(BIG))])) + det_bytes(4096, 9)),
        ".tar.xz", "trailing-garbage")

    # ---- VMs ----
    add("vm_unified_qcow2", "unified tar.gz with rootfs.img (qcow2) -> VM",
        lambda w: gz(tar([F("metadata.yaml", BASE), F("rootfs.img", qcow2(w))])), expect="?", vm=True, needs="qemu-img")
    add("vm_split_qcow2", "meta + qcow2 as part rootfs.img -> VM", lambda w: split(META_XZ(), qcow2(w), "rootfs.img"),
        ".tar.xz", "?", vm=True, needs="qemu-img")
    add("vm_unified_zeros", "unified tar.gz with rootfs.img = 1 KiB zeros -> VM",
        lambda w: gz(tar([F("metadata.yaml", BASE), F("rootfs.img", b"\x00" * 1024)])), expect="?", vm=True)
    return C


def _with_devices(t: bytes) -> bytes:
    """Append a char device member rootfs/dev/null (1,3) before the end-of-archive blocks."""
    body = no_eoa(t)
    h = bytearray(raw_member(b"rootfs/dev/null", b"", b"3")[:512])
    h[329:337] = b"%07o\x00" % 1
    h[337:345] = b"%07o\x00" % 3
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\x00 " % sum(h)
    return body + bytes(h) + b"\x00" * 1024


# ---------------------------------------------------------------------------
# LXD side
# ---------------------------------------------------------------------------


def write_case(case: Case, workdir: Path):
    built = case.build(workdir)
    if isinstance(built, tuple):
        meta_b, rootfs_b, part = built
        mp = workdir / f"{case.name}.meta{case.ext}"
        rp = workdir / f"{case.name}.rootfs{'.qcow2' if part == 'rootfs.img' else '.bin'}"
        mp.write_bytes(meta_b)
        rp.write_bytes(rootfs_b)
        return mp, rp, part, hashlib.sha256(meta_b + rootfs_b).hexdigest()
    p = workdir / f"{case.name}{case.ext}"
    p.write_bytes(built)
    return p, None, None, hashlib.sha256(built).hexdigest()


def instance_name(case: Case) -> str:
    n = re.sub(r"[^a-z0-9-]", "-", case.name.lower())[:50].strip("-")
    return "lxdimgc-" + n


def delete_instance(lxd: LXD, name: str) -> list[str]:
    done = []
    for kind in ("instances",):
        st, doc = lxd.request("GET", f"/1.0/{kind}/{name}")
        if st == 200:
            st, doc = lxd.request("DELETE", f"/1.0/{kind}/{name}")
            op = doc.get("operation")
            if op:
                md = lxd.wait(op)
                if md.get("status") != "Success":
                    raise LXDError(f"DELETE instance {name}: {md.get('err')}")
            elif doc.get("type") == "error":
                raise LXDError(f"DELETE instance {name}: {doc.get('error')}")
            done.append(f"instance:{name}")
    return done


def remove_files(name: str, fp: Optional[str]) -> list[str]:
    removed = []
    cands = [POOL_DIR / "containers" / name, POOL_DIR / "virtual-machines" / name,
             VAR_DIR / "containers" / name, VAR_DIR / "virtual-machines" / name]
    if fp:
        cands += [POOL_DIR / "images" / fp, ld.IMAGES_DIR / fp, ld.IMAGES_DIR / f"{fp}.rootfs"]
    for p in cands:
        if p.is_symlink() or p.is_file():
            p.unlink()
            removed.append(str(p))
        elif p.is_dir():
            subprocess.run(["chattr", "-R", "-i", str(p)], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            shutil.rmtree(p, ignore_errors=True)
            removed.append(str(p))
    return removed


def run_lxd(lxd: LXD, case: Case, main: Path, rootfs: Optional[Path], part: Optional[str], local_fp: str) -> dict:
    name = instance_name(case)
    pre = delete_instance(lxd, name) + remove_orphans(lxd, local_fp) + remove_files(name, local_fp)
    if rootfs is None:
        body = main.read_bytes()
        headers = {"Content-Type": "application/octet-stream", f"{ld.HEADER}-filename": main.name,
                   f"{ld.HEADER}-public": "false"}
    else:
        body, ctype = multipart([("metadata", main), (part, rootfs)])
        headers = {"Content-Type": ctype, f"{ld.HEADER}-public": "false"}
    imp = lxd.post_image(body, headers)
    res = {"import_ok": bool(imp.get("accepted")), "import_error": imp.get("error"), "fingerprint": imp.get("fingerprint"),
           "type": None, "architecture": None, "init_ok": None, "init_error": None, "instance": name}
    if pre:
        res["pre_cleanup"] = pre
    if imp.get("harness_error"):
        res["harness_error"] = imp["harness_error"]
    if not res["import_ok"]:
        orph = remove_orphans(lxd, local_fp)
        if orph:
            res["orphans_removed"] = orph
        return res
    fp = res["fingerprint"]
    try:
        info = lxd.image(fp) or {}
        res["type"], res["architecture"] = info.get("type"), info.get("architecture")
        body = {"name": name, "source": {"type": "image", "fingerprint": fp},
                "type": res["type"] or "container"}
        t0 = time.time()
        st, doc = lxd.request("POST", "/1.0/instances", json.dumps(body).encode(),
                              {"Content-Type": "application/json"})
        if doc.get("type") == "error" or st >= 400:
            res["init_ok"], res["init_error"], res["init_sync_error"] = False, doc.get("error"), st
        else:
            md = lxd.wait(doc["operation"], timeout=300)
            res["init_ok"] = md.get("status") == "Success"
            res["init_error"] = None if res["init_ok"] else md.get("err")
        res["init_seconds"] = round(time.time() - t0, 2)
    except (OSError, LXDError, http.client.HTTPException) as e:
        res["harness_error"] = f"{type(e).__name__}: {e}"
    finally:
        cleanup = []
        try:
            cleanup += delete_instance(lxd, name)
        except LXDError as e:
            res["harness_error"] = str(e)
        try:
            if lxd.image(fp) is not None:
                lxd.delete_image(fp)
        except LXDError as e:
            res["harness_error"] = str(e)
        left = remove_orphans(lxd, fp) + remove_files(name, fp)
        if left:
            res["files_removed_after"] = left
    return res


# ---------------------------------------------------------------------------
# lxdimg side
# ---------------------------------------------------------------------------


def run_lxdimg(exe: Path, main: Path, rootfs: Optional[Path], extra: tuple = ()) -> dict:
    """lxd_differential's runner, plus the creatable verdict of lxd-5.0."""
    out = inspect_json(exe, main, rootfs, extra)
    if "fatal" in out:
        return out
    v = out.pop("report")["verdicts"][ld.TARGET]
    out = {"exit": out["exit"], "accepted": out["accepted"]}
    if "creatable" not in v:
        out["missing"] = True
        return out
    c = v["creatable"] or {}
    out.update(ok=c.get("ok"), error=c.get("error"), code=c.get("code"))
    return out


def compare(case: Case, res: dict, li: dict) -> list[str]:
    if li.get("fatal"):
        return [f"lxdimg failed: {li['fatal']}"]
    mism = []
    if li.get("accepted") is not True:
        mism.append(f"lxdimg says {ld.TARGET} would not import (accepted={li.get('accepted')})")
    lok, iok = res.get("init_ok"), li.get("ok")
    if case.vm and classify(res.get("init_error")) == "vm-unsupported":
        return mism  # this LXD cannot create VMs at all: nothing to compare (printed as VM-UNTESTED)
    if iok is None:
        if not case.vm:
            mism.append(f"creatable.ok is null for a non-VM image (LXD init_ok={lok})")
        return mism
    if iok != lok:
        mism.append(f"creatable.ok={iok} but LXD init_ok={lok}")
    elif not lok:
        # lxdimg's class: from its error text (meant to carry LXD's words) or, failing that, from its code
        lc = classify(res.get("init_error"))
        ic_text, ic_code = classify(li.get("error")), classify(None, li.get("code"))
        ic = ic_text if ic_text == lc else ic_code
        code = li.get("code") or ""
        if any(k in code and lc in v for k, v in CODE_ACCEPTS.items()):
            ic = lc
        if lc == "unpack" and (ic in UNPACK_CLASSES or any(k in code for k in ("decode", "trailing", "tar", "squashfs"))):
            ic = lc
        if lc != ic:
            mism.append(f"failure class: LXD {lc!r} ({res.get('init_error')!r}) vs lxdimg {ic!r} "
                        f"(code={li.get('code')!r}, error={li.get('error')!r})")
    return mism


def one_line(s: Optional[str], n: int) -> str:
    s = (s or "").replace("\n", "\\n")
    return s if len(s) <= n else s[:n - 3] + "..."


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--daemon", choices=sorted(ld.DAEMONS), default="lxd",
                    help="the daemon to compare with (its lxdimg target: lxd-5.0 or incus-6.0)")
    ap.add_argument("--lxd-only", action="store_true",
                    help=f"only run LXD; write its results to --out (default {DEFAULT_OUT.name})")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="JSONL file written by --lxd-only")
    ap.add_argument("--from-expected", metavar="JSONL", help="use recorded LXD results instead of a live daemon")
    ap.add_argument("--keep", metavar="DIR", help="write generated files to DIR and keep them")
    ap.add_argument("-k", dest="patterns", action="append", default=[], metavar="PATTERN")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    use_daemon(args.daemon)

    chosen = select(cases(), args.patterns)
    if args.list:
        for c in chosen:
            print(f"{c.name:32} {c.expect or 'creatable':18} {c.desc}")
        return 0
    if not chosen:
        print("no case matches", file=sys.stderr)
        return 2

    sources = open_sources(args)
    if isinstance(sources, int):
        return sources
    recorded, lxd, exe = sources
    if exe:
        print(f"# lxdimg: {exe}")

    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="lxd-creatable-"))
    workdir.mkdir(parents=True, exist_ok=True)
    out_f = open(args.out, "w") if args.lxd_only else None
    n_ok = n_bad = n_skip = n_missing = 0
    problems, skipped = [], []
    try:
        for case in chosen:
            if case.needs and not shutil.which(case.needs):
                print(f"{case.name:32} SKIP (needs {case.needs})")
                skipped.append((case.name, f"needs {case.needs}"))
                continue
            main_p, rootfs_p, part, local_fp = write_case(case, workdir)
            if recorded is not None:
                res = recorded.get(case.name)
                if res is None:
                    print(f"{case.name:32} SKIP (not recorded)")
                    skipped.append((case.name, "not recorded"))
                    continue
            else:
                try:
                    res = run_lxd(lxd, case, main_p, rootfs_p, part, local_fp)
                except (OSError, LXDError, http.client.HTTPException) as e:
                    res = {"import_ok": None, "harness_error": f"{type(e).__name__}: {e}"}
                res = {"case": case.name, "desc": case.desc, "kind": "split" if rootfs_p else "unified",
                       "part": part, "file": main_p.name, "rootfs": rootfs_p.name if rootfs_p else None,
                       "local_fingerprint": local_fp, "size": main_p.stat().st_size
                       + (rootfs_p.stat().st_size if rootfs_p else 0), **res,
                       "lxd_class": None}
                res["lxd_class"] = None if res.get("init_ok") in (True, None) else classify(res.get("init_error"))
                if out_f:
                    out_f.write(json.dumps(res) + "\n")
                    out_f.flush()
            if res.get("harness_error"):
                problems.append((case.name, "harness: " + res["harness_error"]))
            if not res.get("import_ok"):
                print(f"{case.name:32} SKIP: LXD did not import it: {one_line(res.get('import_error'), 90)}")
                skipped.append((case.name, f"import failed: {res.get('import_error')}"))
                continue
            lxd_s = "init ok" if res.get("init_ok") else f"init FAIL: {one_line(res.get('init_error'), 100)}"
            if args.lxd_only:
                print(f"{case.name:32} {lxd_s}", flush=True)
                n_ok += 1
                continue
            li = run_lxdimg(exe, main_p, rootfs_p, case.lxdimg_args)
            if li.get("missing"):
                n_missing += 1
                print(f"{case.name:32} LXD {lxd_s:70} | lxdimg: no creatable field yet")
                continue
            mism = compare(case, res, li)
            ls = ("ok" if li.get("ok") else ("null" if li.get("ok") is None else "FAIL")) + \
                 f" code={li.get('code')} {one_line(li.get('error'), 60)}"
            if li.get("ok") is None and case.vm:
                ls += " (VM: null accepted)"
            status = "MISMATCH" if mism else (
                "VM-UNTESTED" if case.vm and classify(res.get("init_error")) == "vm-unsupported" else "OK")
            print(f"{case.name:32} LXD {lxd_s:70} | lxdimg {ls} | {status}", flush=True)
            for m in mism:
                print(f"    - {m}")
            if mism:
                n_bad += 1
                problems.append((case.name, "; ".join(mism)))
            else:
                n_ok += 1
    finally:
        if out_f:
            out_f.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        if lxd is not None:
            try:
                st, doc = lxd.request("GET", "/1.0/instances")
                left = [u for u in (doc.get("metadata") or []) if "lxdimgc-" in u]
                if left or lxd.images():
                    print(f"# WARNING: left in LXD: instances {left}, images {lxd.images()}", file=sys.stderr)
            except (OSError, LXDError) as e:
                print(f"# WARNING: could not verify cleanup: {e}", file=sys.stderr)

    print()
    if skipped:
        print(f"# {len(skipped)} skipped:")
        for n, why in skipped:
            print(f"#   {n}: {one_line(why, 120)}")
    if problems:
        print(f"# {len(problems)} problem(s):")
        for n, p in problems:
            print(f"#   {n}: {p}")
    if args.lxd_only:
        print(f"# summary: {n_ok} imported and recorded in {args.out}, {len(skipped)} skipped")
        return 1 if any(p.startswith("harness") for _, p in problems) else 0
    print(f"# summary: {n_ok} agree, {n_bad} MISMATCH, {n_missing} without creatable, {len(skipped)} skipped")
    return 1 if n_bad or any(p.startswith("harness") for _, p in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
