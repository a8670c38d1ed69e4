#!/usr/bin/env python3
"""Differential test: real LXD 5.0.2 image import versus `lxdimg inspect --json`.

Every case is generated at run time (nothing binary is committed), imported into
a running LXD through its REST API on the unix socket, and the result
{accepted, error, fingerprint, type, architecture} is compared with the
`verdicts["lxd-5.0"]` part of lxdimg's JSON report.

Rules (see /work/shared/reference/lxd-image-facts.md §1, §2, §3):
  * accepted must equal report.verdicts["lxd-5.0"].accepted;
  * LXD accepted  -> fingerprint, type and architecture must equal the report's;
  * LXD rejected  -> the error text must equal verdicts["lxd-5.0"].error exactly,
                     except for `yaml:` errors (only acceptance is compared);
  * lxdimg exit code: 0 = lxd-5.0 accepts, 1 = rejects, anything else = failure.

Uploads use the same requests as the `lxc` client (which is not used, because it
sometimes hangs after a fast failure): unified images are POSTed raw with
`Content-Type: application/octet-stream`; split images as multipart/form-data
with parts `metadata` and `rootfs` (or `rootfs.img` when the rootfs is qcow2,
which is what `lxc image import META ROOTFS` decides client-side; a case that
sends a qcow2 as `rootfs` runs lxdimg with `--type container`).  The
client-side rootfs detection of `lxc` (garbage rootfs -> `Unsupported
compression`, empty rootfs -> `EOF`) is therefore NOT exercised: the server
accepts those, and that is what is compared.  Cases with hand-made multipart
shapes (`api_*`) cannot be expressed as an lxdimg command line; they are
recorded but not compared.

Safety: never generates dates beyond year 9999 or -.inf (they poison LXD's DB)
and never a plain tar whose first member is `{}`/`null` (kills the connection).
Images are deleted after each case; files orphaned by `Invalid instance type`
are removed from /var/lib/lxd/images.

Usage:
  python3 tests/lxd_differential.py                 # full comparison
  python3 tests/lxd_differential.py --lxd-only > tests/lxd_expected.jsonl
  python3 tests/lxd_differential.py --from-expected tests/lxd_expected.jsonl
                                                    # compare lxdimg with recorded
                                                    # LXD results (no daemon needed)
  python3 tests/lxd_differential.py -k yaml_ --keep /tmp/cases
  python3 tests/lxd_differential.py --list
Environment: LXDIMG (default target/release/lxdimg), LXD_SOCKET
(default /var/lib/lxd/unix.socket), LXD_IMAGES_DIR (default /var/lib/lxd/images).
Set up the daemon with scripts/lxd-setup.sh.
"""

from __future__ import annotations

import argparse
import bz2
import dataclasses
import fnmatch
import gzip
import hashlib
import http.client
import io
import json
import lzma
import os
import random
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parent.parent
# The daemons compared, each with the lxdimg target that models it (--daemon picks one).
DAEMONS = {
    "lxd": {"socket": "/var/lib/lxd/unix.socket", "images": "/var/lib/lxd/images",
            "target": "lxd-5.0", "header": "X-LXD", "name": "LXD"},
    "incus": {"socket": "/var/lib/incus/unix.socket", "images": "/var/lib/incus/images",
              "target": "incus-6.0", "header": "X-Incus", "name": "Incus"},
}
SOCKET = os.environ.get("LXD_SOCKET", DAEMONS["lxd"]["socket"])
IMAGES_DIR = Path(os.environ.get("LXD_IMAGES_DIR", DAEMONS["lxd"]["images"]))
TARGET = DAEMONS["lxd"]["target"]
HEADER = DAEMONS["lxd"]["header"]


def use_daemon(name: str):
    """Points the harness at one daemon and its lxdimg target."""
    global SOCKET, IMAGES_DIR, TARGET, HEADER
    d = DAEMONS[name]
    if name != "lxd":
        SOCKET, IMAGES_DIR = d["socket"], Path(d["images"])
    TARGET, HEADER = d["target"], d["header"]
MTIME = 1458040200  # fixed mtimes so generated files (and fingerprints) are reproducible

# ---------------------------------------------------------------------------
# LXD REST client over the unix socket
# ---------------------------------------------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 300):
        super().__init__("lxd", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class LXDError(Exception):
    pass


class LXD:
    """An LXD or Incus daemon (same REST API) on its unix socket."""

    def __init__(self, path: Optional[str] = None):
        self.path = path or SOCKET

    def request(self, method: str, url: str, body: bytes | None = None, headers: dict | None = None):
        conn = UnixHTTPConnection(self.path)
        try:
            conn.request(method, url, body=body, headers=headers or {})
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = {"type": "error", "error": "non-JSON response: " + raw[:200].decode(errors="replace")}
        return resp.status, doc

    def ping(self):
        status, doc = self.request("GET", "/1.0")
        if status != 200:
            raise LXDError(f"GET /1.0 -> {status} {doc}")
        return doc["metadata"]

    def wait(self, op_url: str, timeout: int = 120) -> dict:
        deadline = time.time() + 3 * timeout
        while True:
            status, doc = self.request("GET", f"{op_url}/wait?timeout={timeout}")
            if doc.get("type") == "error" and doc.get("error"):
                # Incus answers the wait of a failed operation with an error response.
                return {"status": "Failure", "err": doc["error"]}
            if status != 200:
                raise LXDError(f"waiting for {op_url}: HTTP {status} {doc.get('error')}")
            md = doc.get("metadata") or {}
            if md.get("status") not in ("Running", "Pending"):
                return md
            if time.time() > deadline:
                raise LXDError(f"operation {op_url} still {md.get('status')} after {3 * timeout}s")

    def image(self, fp: str):
        status, doc = self.request("GET", f"/1.0/images/{fp}")
        return doc.get("metadata") if status == 200 else None

    def images(self) -> list[str]:
        status, doc = self.request("GET", "/1.0/images")
        if status != 200:
            raise LXDError(f"GET /1.0/images -> {status} {doc.get('error')}")
        return [u.rsplit("/", 1)[-1] for u in doc.get("metadata") or []]

    def delete_image(self, fp: str):
        status, doc = self.request("DELETE", f"/1.0/images/{fp}")
        if status >= 400 or doc.get("type") == "error":
            raise LXDError(f"DELETE image {fp}: {doc.get('error')}")
        op = doc.get("operation")
        if op:
            md = self.wait(op)
            if md.get("status") != "Success":
                raise LXDError(f"DELETE image {fp}: {md.get('err')}")

    def post_image(self, body: bytes, headers: dict) -> dict:
        """POST /1.0/images and wait. Returns {'accepted', 'error', 'fingerprint'}."""
        try:
            status, doc = self.request("POST", "/1.0/images", body, headers)
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            return {"accepted": False, "error": None, "fingerprint": None,
                    "harness_error": f"connection failed: {type(e).__name__}: {e}"}
        if doc.get("type") == "error" or status >= 400:
            return {"accepted": False, "error": doc.get("error"), "fingerprint": None, "sync_error": status}
        op = doc.get("operation")
        if not op:
            return {"accepted": False, "error": None, "fingerprint": None,
                    "harness_error": f"no operation in response: {doc}"}
        md = self.wait(op)
        if md.get("status") == "Success":
            fp = (md.get("metadata") or {}).get("fingerprint")
            return {"accepted": True, "error": None, "fingerprint": fp}
        return {"accepted": False, "error": md.get("err"), "fingerprint": None}


# ---------------------------------------------------------------------------
# File builders
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class E:
    """A tar entry: kind f(ile) d(ir) s(ymlink) h(ardlink)."""
    name: str
    kind: str = "f"
    data: bytes = b""
    link: str = ""
    pax: dict | None = None


def F(name, data):
    return E(name, "f", data if isinstance(data, bytes) else data.encode())


def D(name):
    return E(name, "d")


def tar(entries: list[E], fmt=tarfile.GNU_FORMAT) -> bytes:
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=fmt) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e.name)
            ti.mtime = MTIME
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            if e.pax:
                ti.pax_headers = dict(e.pax)
            if e.kind == "f":
                ti.type, ti.mode, ti.size = tarfile.REGTYPE, 0o644, len(e.data)
                tf.addfile(ti, io.BytesIO(e.data))
            elif e.kind == "d":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif e.kind in ("s", "h"):
                ti.type = tarfile.SYMTYPE if e.kind == "s" else tarfile.LNKTYPE
                ti.mode, ti.linkname = 0o777 if e.kind == "s" else 0o644, e.link
                tf.addfile(ti)
            else:
                raise ValueError(e.kind)
    return bio.getvalue()


def raw_header(name: bytes, size: int, typeflag: bytes, magic: bytes | None = b"ustar  \x00",
               mode: int = 0o644) -> bytes:
    """One 512-byte tar header built by hand. magic=None gives a V7 header (no magic)."""
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"%07o\x00" % mode
    h[108:116] = b"%07o\x00" % 0
    h[116:124] = b"%07o\x00" % 0
    h[124:136] = b"%011o\x00" % size
    h[136:148] = b"%011o\x00" % MTIME
    h[148:156] = b" " * 8
    h[156:157] = typeflag
    if magic is not None:
        h[257:265] = magic
        h[265:269] = b"root"
        h[297:301] = b"root"
    h[148:156] = b"%06o\x00 " % sum(h)
    return bytes(h)


def raw_member(name: bytes, data: bytes = b"", typeflag: bytes = b"0", magic=b"ustar  \x00") -> bytes:
    mode = 0o755 if typeflag == b"5" else 0o644
    pad = (-len(data)) % 512
    return raw_header(name, len(data), typeflag, magic, mode) + data + b"\x00" * pad


def raw_tar(*members: bytes) -> bytes:
    return b"".join(members) + b"\x00" * 1024


def gnu_longname(longname: bytes) -> bytes:
    """A GNU ././@LongLink 'L' record naming the following member."""
    return raw_member(b"././@LongLink", longname + b"\x00", b"L")


def gz(b: bytes) -> bytes:
    return gzip.compress(b, mtime=0)


def xz(b: bytes) -> bytes:
    return lzma.compress(b, format=lzma.FORMAT_XZ)


def lzma_alone(b: bytes) -> bytes:
    return lzma.compress(b, format=lzma.FORMAT_ALONE)


def bz(b: bytes) -> bytes:
    return bz2.compress(b)


def run_filter(cmd: list[str], data: bytes) -> bytes:
    return subprocess.run(cmd, input=data, stdout=subprocess.PIPE, check=True).stdout


def zst(b: bytes) -> bytes:
    return run_filter(["zstd", "-q", "-c", "-19"], b)


def lz4c(b: bytes) -> bytes:
    return run_filter(["lz4", "-q", "-c"], b)


def det_bytes(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def squashfs(workdir: Path, files: dict[str, bytes], comp: str = "xz", extra: tuple = ()) -> bytes:
    src = Path(tempfile.mkdtemp(dir=workdir, prefix="sqsrc-"))
    out = workdir / (src.name + ".squashfs")
    try:
        for rel, data in files.items():
            p = src / rel
            if rel.endswith("/"):
                p.mkdir(parents=True, exist_ok=True)
                continue
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        subprocess.run(["mksquashfs", str(src), str(out), "-noappend", "-quiet", "-no-progress",
                        "-all-root", "-all-time", "0", "-mkfs-time", "0", "-comp", comp, *extra],
                       check=True, stdout=subprocess.DEVNULL)
        return out.read_bytes()
    finally:
        shutil.rmtree(src, ignore_errors=True)
        out.unlink(missing_ok=True)


def qcow2(workdir: Path, size: str = "16M") -> bytes:
    out = workdir / f"tmp-{os.getpid()}-{random.random()}.qcow2"
    try:
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(out), size], check=True,
                       stdout=subprocess.DEVNULL)
        return out.read_bytes()
    finally:
        out.unlink(missing_ok=True)


# ---------------------------------------------------------------------------
# metadata.yaml snippets
# ---------------------------------------------------------------------------

PROPS = "properties:\n  description: lxdimg differential test\n  os: testos\n"
BASE = "architecture: x86_64\ncreation_date: 1458040200\n" + PROPS


def meta(arch: str | None = "x86_64", date: str | None = "1458040200", props: str = PROPS, extra: str = "") -> str:
    s = ""
    if arch is not None:
        s += f"architecture: {arch}\n"
    if date is not None:
        s += f"creation_date: {date}\n"
    return s + props + extra


ROOTFS = [D("rootfs/"), F("rootfs/hello", "hello\n")]


def std(yaml: str | bytes, rootfs: list[E] | None = None) -> list[E]:
    return [F("metadata.yaml", yaml)] + (ROOTFS if rootfs is None else rootfs)


def yaml_of_size(n: int) -> str:
    """BASE padded with comment lines to exactly n bytes."""
    out = BASE
    while len(out) < n:
        room = n - len(out)
        if room >= 1024 + 3:
            out += "#" + "x" * 1022 + "\n"
        else:
            out += "#" + "x" * (room - 2) + "\n" if room >= 2 else "\n"
    assert len(out) == n, (len(out), n)
    return out


TEMPLATE_TAIL = [F("templates/hostname.tpl", "{{ container.name }}\n")]

# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Case:
    name: str
    desc: str
    build: Callable[[Path], object]  # -> bytes (unified) or (meta, rootfs, part) (split)
    ext: str = ".tar.gz"
    expect: tuple | None = None  # facts-file expectation: OK(...) / ERR(...)
    compare: bool = True  # compare with lxdimg (False: not expressible via the CLI)
    needs: str | None = None  # external tool required
    lxdimg_args: tuple = ()  # extra `lxdimg inspect` options (e.g. --type for API-only part names)
    hint: str = ""  # printed with a mismatch


def OK(type_="container", arch="x86_64", **extra):
    return ("ok", type_, arch, extra)


def ERR(msg, match="exact"):
    return ("err", msg, match)


NOT_YAML = "Metadata tarball is missing metadata.yaml"
CLIENT_HINT = ("LXD's server never inspects the rootfs part at import; only the lxc client refuses it "
               "(client-side detection, facts 1.3/3). lxd-5.0 verdict models `lxc image import`, not the server")
UNSUP = "Unsupported compression"
INVALID_TYPE = "Invalid instance type"


def arch_err(a):
    return ERR(f"Architecture isn't supported: {a}")


def yaml_err(substr):
    return ERR(substr, "yaml")


def split(meta_b, rootfs_b, part="rootfs"):
    return (meta_b, rootfs_b, part)


@dataclasses.dataclass
class RawParts:
    """A multipart upload with arbitrary part names/order (API only; `lxc` cannot send these)."""
    parts: list  # [(form name, file name, bytes)]


def META_XZ(yaml=BASE):
    return xz(tar([F("metadata.yaml", yaml)]))


def cases() -> list[Case]:
    C = []

    def add(name, desc, build, ext=".tar.gz", expect=None, **kw):
        C.append(Case(name, desc, build, ext, expect, **kw))

    def add_yaml(name, desc, yaml, expect, rootfs=None):
        add(name, desc, lambda w, y=yaml, r=rootfs: gz(tar(std(y, r))), expect=expect)

    # ---- compression / container formats (facts §1) ----
    add("gzip_baseline", "GNU tar + gzip, metadata.yaml + rootfs/hello", lambda w: gz(tar(std(BASE))), expect=OK())
    add("gzip_multimember", "two concatenated gzip members", lambda w: (lambda t: gz(t[:700]) + gz(t[700:]))(tar(std(BASE))),
        expect=OK())
    add("bzip2", "tar.bz2", lambda w: bz(tar(std(BASE))), ".tar.bz2", OK())
    add("xz", "tar.xz", lambda w: xz(tar(std(BASE))), ".tar.xz", OK())
    add("lzma_alone", "tar.lzma (lzma-alone, starts 5D 00 00)", lambda w: lzma_alone(tar(std(BASE))), ".tar.lzma", OK())
    add("zstd", "tar.zst via zstd CLI", lambda w: zst(tar(std(BASE))), ".tar.zst", OK(), needs="zstd")
    add("lz4_unsupported", "tar.lz4 (LXD has no lz4 rule)", lambda w: lz4c(tar(std(BASE))), ".tar.lz4", ERR(UNSUP), needs="lz4")
    add("zip_unsupported", "zip archive", lambda w: _zip(std(BASE)), ".zip", ERR(UNSUP))
    add("tar_gnu_plain", "uncompressed GNU tar", lambda w: tar(std(BASE), tarfile.GNU_FORMAT), ".tar", OK())
    add("tar_ustar_plain", "uncompressed POSIX ustar tar", lambda w: tar(std(BASE), tarfile.USTAR_FORMAT), ".tar", OK())
    add("tar_pax_plain", "uncompressed pax tar (with a pax record)",
        lambda w: tar([E("metadata.yaml", "f", BASE.encode(), pax={"comment": "x"})] + ROOTFS, tarfile.PAX_FORMAT),
        ".tar", OK())
    v7 = lambda: raw_tar(raw_member(b"metadata.yaml", BASE.encode(), b"0", None),
                         raw_member(b"rootfs/", b"", b"5", None),
                         raw_member(b"rootfs/hello", b"hello\n", b"0", None))
    add("tar_v7_plain", "V7 tar (no magic at 257), uncompressed", lambda w: v7(), ".tar", ERR(UNSUP))
    add("tar_v7_gzip", "V7 tar, gzipped (only the outer layer is detected)", lambda w: gz(v7()), ".tar.gz", OK())
    add("gzip_of_gzip", "gzip(gzip(tar)): inner stream is not a tar", lambda w: gz(gz(tar(std(BASE + "#" + "p" * 2000 + "\n")))))

    # ---- short files / magic-only files (zero padding quirk) ----
    add("magic_gzip_2bytes", "exactly 1F 8B", lambda w: b"\x1f\x8b", ".bin", ERR(NOT_YAML))
    add("magic_bz_2bytes", "exactly 'BZ'", lambda w: b"BZ", ".bin", ERR(NOT_YAML))
    add("magic_lzma_3bytes", "exactly 5D 00 00", lambda w: b"\x5d\x00\x00", ".bin", ERR(NOT_YAML))
    add("magic_lzma_1byte", "1 byte 5D (zero padding completes 5D 00 00)", lambda w: b"\x5d", ".bin", ERR(NOT_YAML))
    add("magic_7zxz_lzma_rule", "00 '7zXZ' 00 (rule 4: non-FD + 7zXZ -> lzma)", lambda w: b"\x007zXZ\x00", ".bin", ERR(NOT_YAML))
    add("magic_xz_junk", "FD '7zXZ' + junk (6th byte not checked)", lambda w: b"\xfd7zXZ!" + b"junk" * 20, ".bin", ERR(NOT_YAML))
    add("magic_zstd_junk", "zstd magic + junk", lambda w: b"\x28\xb5\x2f\xfd" + b"junk" * 20, ".bin", ERR(NOT_YAML))
    add("magic_1f_1byte", "1 byte 1F", lambda w: b"\x1f", ".bin", ERR(UNSUP))
    add("empty_file", "0-byte file", lambda w: b"", ".bin", ERR("EOF"))
    add("text_file", "ASCII text", lambda w: b"this is not an image\n", ".txt", ERR(UNSUP))
    add("qfi_zeros_unified", "QFI\\xFB + zeros uploaded as a unified image", lambda w: b"QFI\xfb" + b"\x00" * 1020, ".qcow2",
        ERR(NOT_YAML))
    add("qcow2_unified", "real qcow2 uploaded as a unified image", lambda w: qcow2(w), ".qcow2", ERR(NOT_YAML),
        needs="qemu-img")
    add("squashfs_unified", "unified squashfs (needs sqfs2tar on the LXD host)",
        lambda w: squashfs(w, {"metadata.yaml": BASE.encode(), "rootfs/hello": b"hello\n"}), ".squashfs",
        ERR('exec: "sqfs2tar": executable file not found in $PATH') if not shutil.which("sqfs2tar") else OK(),
        needs="mksquashfs",
        # lxdimg's lxd-5.0 target models a plain Debian 12 LXD host, without squashfs-tools-ng;
        # installing Incus (which the tests do) adds sqfs2tar to this host, and then LXD imports it.
        compare=not shutil.which("sqfs2tar"))

    # ---- plain tars whose first member name looks like a compressor magic ----
    first = lambda n: tar([F(n, "x\n")] + std(BASE), tarfile.GNU_FORMAT)
    add("tar_first_member_BZh", "plain tar, first member 'BZh91AY&SY' -> detected as bzip2", lambda w: first("BZh91AY&SY"),
        ".tar", ERR(NOT_YAML))
    add("tar_first_member_rbracket", "plain tar, first member ']' (5D 00 00 -> lzma)", lambda w: first("]"), ".tar", ERR(NOT_YAML))
    add("tar_first_member_x7zXZ", "plain tar, first member 'x7zXZ' (-> lzma)", lambda w: first("x7zXZ"), ".tar", ERR(NOT_YAML))
    add("tar_first_member_hsqs", "plain tar, first member 'hsqs' (ustar rule wins)", lambda w: first("hsqs"), ".tar", OK())
    add("tar_first_member_QFI", "plain tar, first member 'QFI' (ustar rule wins)", lambda w: first("QFI"), ".tar", OK())
    add("tar_first_member_1", "plain tar, first member '1' (valid JSON number, harmless)", lambda w: first("1"), ".tar", OK())

    # ---- issue 8: dates the database cannot read back (facts §2.5, §8.1) ----
    for label, extra in [("creation_9999", "creation_date: 253402300799\n"),
                         ("creation_10000", "creation_date: 253402300800\n"),
                         ("creation_int64_max", "creation_date: 9223372036854775807\n"),
                         ("expiry_10000", "expiry_date: 253402300800\n")]:
        add_yaml(f"date_{label}", label.replace("_", " "), meta(extra=extra), expect=None)
    # ---- issue 8: metadata.yaml in UTF-16 with a byte-order mark (libyaml detects it) ----
    u16 = lambda text, bom, codec: bom + text.encode(codec)
    add("yaml_utf16le_bom", "metadata.yaml in UTF-16LE with a BOM",
        lambda w: gz(tar(std(u16(meta(props=PROPS + "  description: café 中文\n"), b"\xff\xfe", "utf-16-le")))), expect=OK())
    add("yaml_utf16be_bom", "metadata.yaml in UTF-16BE with a BOM, document marker",
        lambda w: gz(tar(std(u16("---\n" + BASE, b"\xfe\xff", "utf-16-be")))), expect=OK())
    add("yaml_utf16le_lone_surrogate", "UTF-16LE with a high surrogate not followed by a low one",
        lambda w: gz(tar(std(b"\xff\xfe" + "architecture: x86_64\nproperties:\n  os: ".encode("utf-16-le")
                             + b"\x00\xd8a\x00\n\x00"))), expect=ERR("yaml: expected low surrogate area"))
    add("yaml_utf16le_no_bom", "UTF-16LE without a BOM (read as UTF-8)",
        lambda w: gz(tar(std(BASE.encode("utf-16-le")))), expect=None)

    # ---- issue 8: junk after a complete compressed stream (a bad download, a concatenation) ----
    junk = det_bytes(4096, seed=9)
    add("junk_after_xz", "valid .tar.xz + 4 KiB junk", lambda w: xz(tar(std(BASE))) + junk, ".tar.xz", OK())
    add("junk_after_gzip", "valid .tar.gz + 4 KiB junk", lambda w: gz(tar(std(BASE))) + junk, ".tar.gz", OK())
    add("junk_after_zstd", "valid .tar.zst + 4 KiB junk", lambda w: zst(tar(std(BASE))) + junk, ".tar.zst", OK(),
        needs="zstd")
    add("junk_after_bzip2", "valid .tar.bz2 + 4 KiB junk", lambda w: bz(tar(std(BASE))) + junk, ".tar.bz2", OK())
    add("junk_after_lzma", "valid .tar.lzma + 4 KiB junk", lambda w: lzma_alone(tar(std(BASE))) + junk, ".tar.lzma",
        OK())
    # ---- issue 8: architecture names the Debian builds differ on (facts §8.1) ----
    for a in ("loong64", "amd64v3", "x86_64_v3"):
        add_yaml(f"arch_{a}", f"architecture: {a}", meta(a), expect=None)

    # ---- trailing junk / truncation / corrupt headers ----
    add("gzip_trailing_junk", "valid .tar.gz + 140 bytes junk", lambda w: gz(tar(std(BASE))) + b"junk" * 35, expect=OK())
    add("gzip_truncated_after_needed", "tar.gz with a 256 KiB random file at the end, cut in half",
        lambda w: (lambda g: g[: len(g) // 2])(gz(tar(std(BASE) + [F("rootfs/big", det_bytes(256 * 1024))]))), expect=OK())
    add("tar_bad_checksum_first", "gzipped tar whose first header checksum is wrong",
        lambda w: gz(_corrupt_first_checksum(tar(std(BASE)))), expect=ERR("archive/tar: invalid tar header"))
    add("tar_truncated_in_header", "plain tar cut inside the 2nd header (before rootfs/)",
        lambda w: tar([F("metadata.yaml", BASE)] + ROOTFS)[:1024 + 100], ".tar", ERR("unexpected EOF"))
    add("tar_bad_checksum_after_stop", "corrupt header after the early-stop point",
        lambda w: gz(_corrupt_member_checksum(tar(std(BASE) + [F("rootfs/zz", "z")]), 3)), expect=OK())

    # ---- tar structure (facts §2.1) ----
    add("dot_slash_prefix", "./, ./metadata.yaml, ./rootfs/...",
        lambda w: gz(tar([D("./"), F("./metadata.yaml", BASE), D("./rootfs/"), F("./rootfs/hello", "hi\n")])), expect=OK())
    add("rootfs_before_metadata", "rootfs/ entries first", lambda w: gz(tar(ROOTFS + [F("metadata.yaml", BASE)])), expect=OK())
    add("metadata_twice_merged", "two metadata.yaml before rootfs: decoded on top of each other",
        lambda w: gz(tar([F("metadata.yaml", "architecture: armv7l\ncreation_date: 1\nproperties:\n  a: first\n  b: first\n"),
                          F("metadata.yaml", "creation_date: 1458040200\nproperties:\n  a: second\n")] + ROOTFS)),
        expect=OK(arch="armv7l", properties={"a": "second", "b": "first"}))
    add("metadata_second_after_rootfs", "second metadata.yaml (bogus arch) after rootfs is never read",
        lambda w: gz(tar(std(BASE) + [F("metadata.yaml", "architecture: bogus\n")])), expect=OK())
    add("rootfs_first_metadata_twice", "rootfs/ first: the first metadata.yaml ends the walk",
        lambda w: gz(tar(ROOTFS + [F("metadata.yaml", meta("aarch64")), F("metadata.yaml", "architecture: bogus\n")])),
        expect=OK(arch="aarch64"))
    add("metadata_abs_path", "/metadata.yaml", lambda w: gz(tar([F("/metadata.yaml", BASE)] + ROOTFS)), expect=ERR(NOT_YAML))
    add("metadata_in_subdir", "img/metadata.yaml", lambda w: gz(tar([F("img/metadata.yaml", BASE)] + ROOTFS)), expect=ERR(NOT_YAML))
    add("metadata_dot_double_slash", ".//metadata.yaml", lambda w: gz(tar([F(".//metadata.yaml", BASE)] + ROOTFS)),
        expect=ERR(NOT_YAML))
    add("metadata_uppercase", "METADATA.YAML", lambda w: gz(tar([F("METADATA.YAML", BASE)] + ROOTFS)), expect=ERR(NOT_YAML))
    add("metadata_symlink", "metadata.yaml is a symlink to real.yaml",
        lambda w: gz(tar([F("real.yaml", BASE), E("metadata.yaml", "s", link="real.yaml")] + ROOTFS)), expect=ERR("EOF"))
    add("metadata_hardlink", "metadata.yaml is a hard link to real.yaml",
        lambda w: gz(tar([F("real.yaml", BASE), E("metadata.yaml", "h", link="real.yaml")] + ROOTFS)), expect=ERR("EOF"))
    add("metadata_dir_entry_plus_file", "directory entry 'metadata.yaml/' plus a real metadata.yaml",
        lambda w: gz(tar([D("metadata.yaml/"), F("metadata.yaml", BASE)] + ROOTFS)), expect=OK())
    add("no_rootfs", "metadata.yaml only (unified)", lambda w: gz(tar([F("metadata.yaml", BASE)])), expect=ERR(INVALID_TYPE))
    add("rootfs_plain_file", "only an entry named 'rootfs' (file, no slash)",
        lambda w: gz(tar([F("metadata.yaml", BASE), F("rootfs", "not a dir\n")])), expect=ERR(INVALID_TYPE))
    add("rootfs_img_vm", "rootfs.img (1 KiB zeros) -> VM",
        lambda w: gz(tar([F("metadata.yaml", BASE), F("rootfs.img", b"\x00" * 1024)])), expect=OK("virtual-machine"))
    add("rootfs_img_dot_slash_qcow2", "./rootfs.img holding a real qcow2 -> VM",
        lambda w: gz(tar([F("./metadata.yaml", BASE), F("./rootfs.img", qcow2(w))])), expect=OK("virtual-machine"),
        needs="qemu-img")
    add("rootfs_dir_then_img", "rootfs/ then rootfs.img then metadata: last root entry before metadata wins",
        lambda w: gz(tar(ROOTFS + [F("rootfs.img", b"\x00" * 512), F("metadata.yaml", BASE)])), expect=OK("virtual-machine"))
    add("rootfs_img_then_dir_after_meta", "metadata, rootfs.img, rootfs/: stops at rootfs.img",
        lambda w: gz(tar([F("metadata.yaml", BASE), F("rootfs.img", b"\x00" * 512)] + ROOTFS)), expect=OK("virtual-machine"))
    add("rootfs_lone_dir", "lone rootfs/ directory entry", lambda w: gz(tar([F("metadata.yaml", BASE), D("rootfs/")])),
        expect=OK())
    add("rootfs_img_dir_prefix", "'rootfs.img/x' is neither rootfs/ nor rootfs.img",
        lambda w: gz(tar([F("metadata.yaml", BASE), F("rootfs.img/x", "x")])), expect=ERR(INVALID_TYPE))
    add("gnu_longname_metadata", "GNU ././@LongLink naming 'metadata.yaml' (header name differs)",
        lambda w: gz(raw_tar(gnu_longname(b"metadata.yaml"), raw_member(b"placeholder-name", BASE.encode()),
                             raw_member(b"rootfs/", b"", b"5"), raw_member(b"rootfs/hello", b"hi\n"))), expect=OK())
    add("gnu_longname_rootfs", "GNU LongLink naming a 150-char rootfs/ path (header name differs)",
        lambda w: gz(raw_tar(raw_member(b"metadata.yaml", BASE.encode()),
                             gnu_longname(b"rootfs/" + b"a" * 150), raw_member(b"placeholder-name", b"hi\n"))), expect=OK())
    add("pax_path_metadata", "pax 'path=metadata.yaml' over ustar name 'placeholder-name'",
        lambda w: gz(tar([E("placeholder-name", "f", BASE.encode(), pax={"path": "metadata.yaml"})] + ROOTFS,
                         tarfile.PAX_FORMAT)), expect=OK())
    add("pax_path_rootfs", "pax long 'path=rootfs/<200 chars>' over ustar name 'placeholder-name'",
        lambda w: tar([F("metadata.yaml", BASE), E("placeholder-name", "f", b"hi\n", pax={"path": "rootfs/" + "b" * 200})],
                      tarfile.PAX_FORMAT), ".tar", OK())
    add("ustar_prefix_rootfs", "ustar prefix field holds 'rootfs/ddd...' (name field is just 'hello')",
        lambda w: tar([F("metadata.yaml", BASE), F("rootfs/" + "d" * 120 + "/hello", "hi\n")], tarfile.USTAR_FORMAT),
        ".tar", OK())

    # ---- YAML content (facts §2.2-2.5, §2.8) ----
    add_yaml("yaml_quoted_date", "creation_date: \"1458040200\"", meta(date='"1458040200"'),
             yaml_err("cannot unmarshal !!str `1458040200` into int64"))
    add_yaml("yaml_float_date_exp", "creation_date: 1.4580402007e9", meta(date="1.4580402007e9"), OK())
    add_yaml("yaml_float_date_frac", "creation_date: 1458040200.9", meta(date="1458040200.9"), OK())
    add_yaml("yaml_hex_date", "creation_date: 0x56E7A8C8", meta(date="0x56E7A8C8"), OK())
    add_yaml("yaml_underscore_date", "creation_date: 1_458_040_200", meta(date="1_458_040_200"), OK())
    add_yaml("yaml_timestamp_date", "creation_date: 2016-03-15", meta(date="2016-03-15"),
             yaml_err("cannot unmarshal !!timestamp `2016-03-15` into int64"))
    add_yaml("yaml_negative_date", "creation_date: -5", meta(date="-5"), OK())
    add_yaml("yaml_zero_date", "creation_date: 0", meta(date="0"), ERR("Missing creation date"))
    add_yaml("yaml_missing_date", "no creation_date", meta(date=None), ERR("Missing creation date"))
    add_yaml("yaml_null_date", "creation_date: ~", meta(date="~"), ERR("Missing creation date"))
    add_yaml("yaml_max_date", "creation_date: 253402300799 (9999-12-31T23:59:59Z)", meta(date="253402300799"), OK())
    add_yaml("yaml_min_date", "creation_date: -62135596800 (0001-01-01)", meta(date="-62135596800"), OK())
    add_yaml("yaml_expiry_1000", "expiry_date: 1000", meta(extra="expiry_date: 1000\n"), OK())
    add_yaml("yaml_expiry_quoted", "expiry_date: \"1000\"", meta(extra='expiry_date: "1000"\n'),
             yaml_err("cannot unmarshal !!str `1000` into int64"))
    for alias, canon in [("amd64", "x86_64"), ("armhf", "armv7l"), ("arm64", "aarch64"), ("i386", "i686"),
                         ("mipsle", "mips"), ("armv8l", "armv8l"), ("ppc64el", "ppc64le"), ("generic_64", "x86_64")]:
        add_yaml(f"arch_{alias}", f"architecture: {alias}", meta(alias), OK(arch=canon))
    for bad, label in [("X86_64", "upper"), ('"amd64 "', "trailing_space"), ("x86_64 x86_64", "doubled"),
                       ("loongarch64", "loongarch64"), ("mips64le_bogus", "bogus")]:
        shown = bad.strip('"')
        add_yaml(f"arch_bad_{label}", f"architecture: {bad}", meta(bad), arch_err(shown))
    add_yaml("arch_missing", "no architecture key", meta(None), ERR("Architecture isn't supported: "))
    add_yaml("yaml_doc_marker_only", "metadata.yaml is just '---'", "---\n", ERR("Architecture isn't supported: "))
    add_yaml("yaml_dup_top_keys", "architecture: bogus then architecture: x86_64",
             "architecture: bogus\n" + BASE, OK())
    add_yaml("yaml_dup_property_keys", "properties: os: a, os: b",
             meta(props="properties:\n  os: a\n  os: b\n"), OK(properties={"os": "b"}))
    add_yaml("yaml_unknown_keys", "unknown keys foo / Architecture", "foo: bar\nArchitecture: bogus\n" + BASE, OK())
    add("yaml_anchors", "anchor &p reused in templates.*.properties",
        lambda w: gz(tar(std("architecture: x86_64\ncreation_date: 1458040200\nproperties: &p\n  os: testos\n  release: one\n"
                             "templates:\n  /etc/hostname:\n    when: [create, copy]\n    template: hostname.tpl\n"
                             "    properties: *p\n") + TEMPLATE_TAIL)), expect=OK(properties={"os": "testos", "release": "one"}))
    add_yaml("yaml_merge_key", "merge key <<: *b with override",
             "base: &b\n  os: ubuntu\n  release: focal\narchitecture: x86_64\ncreation_date: 1458040200\n"
             "properties:\n  <<: *b\n  release: jammy\n", OK(properties={"os": "ubuntu", "release": "jammy"}))
    add_yaml("yaml_alias_arch", "architecture via alias *a", "x: &a aarch64\narchitecture: *a\ncreation_date: 1458040200\n",
             OK(arch="aarch64"))
    add_yaml("yaml_prop_value_map", "property value is a map", meta(props="properties:\n  os: {a: b}\n"),
             yaml_err("cannot unmarshal !!map into string"))
    add_yaml("yaml_prop_value_list", "property value is a list", meta(props="properties:\n  release: [a, b]\n"),
             yaml_err("cannot unmarshal !!seq into string"))
    add_yaml("yaml_properties_list", "properties: [a, b]", meta(props="properties: [a, b]\n"),
             yaml_err("cannot unmarshal !!seq into map[string]string"))
    add_yaml("yaml_properties_null", "properties: (null), no X-LXD-properties header sent", meta(props="properties:\n"), OK())
    add_yaml("yaml_no_properties", "no properties key", meta(props=""), OK())
    add_yaml("yaml_empty", "0-byte metadata.yaml", "", ERR("EOF"))
    add_yaml("yaml_comment_only", "only comments", "# nothing here\n# at all\n", ERR("EOF"))
    add_yaml("yaml_scalar_doc", "top-level scalar 'hello'", "hello\n",
             yaml_err("cannot unmarshal !!str `hello` into api.ImageMetadata"))
    add_yaml("yaml_two_docs", "two documents, second invalid", "---\n" + BASE + "---\narchitecture: [unclosed\n", OK())
    add_yaml("yaml_tab_indent", "tab-indented mapping", "architecture: x86_64\ncreation_date: 1458040200\nproperties:\n\tos: x\n",
             yaml_err("yaml: line 4: found character that cannot start any token"))
    tpl = "templates:\n  /etc/hostname:\n    when:\n      - create\n    template: hostname.tpl\n"
    add("yaml_when_scalar", "templates.*.when: create (scalar)",
        lambda w: gz(tar(std(BASE + "templates:\n  /etc/hostname:\n    when: create\n    template: hostname.tpl\n")
                         + TEMPLATE_TAIL)), expect=yaml_err("cannot unmarshal !!str `create` into []string"))
    add("yaml_create_only_quoted", "create_only: \"yes\"",
        lambda w: gz(tar(std(BASE + tpl + '    create_only: "yes"\n') + TEMPLATE_TAIL)),
        expect=yaml_err("cannot unmarshal !!str `yes` into bool"))
    add("yaml_create_only_bare_yes", "create_only: yes (YAML 1.1 bool)",
        lambda w: gz(tar(std(BASE + tpl + "    create_only: yes\n") + TEMPLATE_TAIL)), expect=OK())
    add("yaml_templates_unvalidated", "when: [bogus], template file missing",
        lambda w: gz(tar(std(BASE + "templates:\n  /etc/x:\n    when: [bogus]\n    template: missing.tpl\n"))), expect=OK())
    add_yaml("yaml_bom", "UTF-8 BOM", "\ufeff" + BASE, OK())
    add_yaml("yaml_crlf", "CRLF line ends", BASE.replace("\n", "\r\n"), OK())
    add_yaml("yaml_json_style", "JSON flow syntax",
             '{"architecture": "x86_64", "creation_date": 1458040200, "properties": {"os": "testos"}}\n', OK())
    add_yaml("yaml_1mib_exact", "metadata.yaml of exactly 1,048,576 bytes", yaml_of_size(1048576), OK())
    add_yaml("yaml_1mib_plus_1", "metadata.yaml of 1,048,577 bytes", yaml_of_size(1048577),
             yaml_err("yaml: input error: input data too large"))
    add_yaml("yaml_unquoted_props", "unquoted numbers / dates / bools / nulls as property values",
             meta(props="properties:\n  version: 14.04\n  serial: 20160314\n  d: 2016-03-15\n  t: 2016-03-15T10:00:00Z\n"
                        "  flag: yes\n  flag2: true\n  nul: ~\n  nul2:\n  hex: 0x1F\n"),
             OK(properties={"version": "14.04", "serial": "20160314", "d": "2016-03-15", "t": "2016-03-15T10:00:00Z",
                            "flag": "yes", "flag2": "true", "nul": "", "nul2": "", "hex": "0x1F"}))
    add_yaml("yaml_invalid_utf8", "Latin-1 byte in a property value", (BASE + "  note: caf").encode() + b"\xe9\n", None)
    add_yaml("yaml_bad_syntax", "unclosed flow sequence", BASE + "x: [a, b\n", None)

    # ---- split images (facts §3) ----
    sq = lambda w: squashfs(w, {"hello": b"hello\n", "etc/": b""})
    add("split_squashfs", "meta.tar.xz + rootfs.squashfs (part rootfs)", lambda w: split(META_XZ(), sq(w)), ".tar.xz",
        OK(), needs="mksquashfs")
    add("split_qcow2_vm", "meta.tar.xz + qcow2 (part rootfs.img)", lambda w: split(META_XZ(), qcow2(w), "rootfs.img"),
        ".tar.xz", OK("virtual-machine"), needs="qemu-img")
    add("split_qcow2_as_container", "meta + qcow2 sent as part 'rootfs' (lxc would send rootfs.img; lxdimg --type container)",
        lambda w: split(META_XZ(), qcow2(w), "rootfs"), ".tar.xz", OK(), needs="qemu-img",
        lxdimg_args=("--type", "container"))
    add("split_garbage_rootfs", "meta + garbage rootfs (server accepts; lxc client would refuse)",
        lambda w: split(META_XZ(), b"this is not a filesystem\n" * 40), ".tar.xz", OK(), hint=CLIENT_HINT,
        lxdimg_args=("--type", "container"))
    add("split_empty_rootfs", "meta + 0-byte rootfs (fp = sha256(meta))", lambda w: split(META_XZ(), b""), ".tar.xz", OK(),
        hint=CLIENT_HINT, lxdimg_args=("--type", "container"))
    add("split_rootfs_tar_xz", "meta + rootfs.tar.xz", lambda w: split(META_XZ(), xz(tar([F("hello", "hi\n")]))), ".tar.xz", OK())
    add("split_meta_gz", "meta.tar.gz + squashfs", lambda w: split(gz(tar([F("metadata.yaml", BASE)])), sq(w)), ".tar.gz",
        OK(), needs="mksquashfs")
    add("split_meta_no_creation_date", "metadata without creation_date",
        lambda w: split(META_XZ(meta(date=None)), sq(w)), ".tar.xz", ERR("Missing creation date"), needs="mksquashfs")
    add("split_meta_bad_arch", "metadata with architecture: bogus",
        lambda w: split(META_XZ(meta("bogus")), sq(w)), ".tar.xz", arch_err("bogus"), needs="mksquashfs")
    add("split_meta_contains_rootfs_img", "metadata tarball also holds rootfs.img; rootfs part is squashfs",
        lambda w: split(xz(tar([F("metadata.yaml", BASE), F("rootfs.img", b"\x00" * 512)])), sq(w)), ".tar.xz", OK(),
        needs="mksquashfs")
    add("split_meta_missing_yaml", "metadata tarball without metadata.yaml",
        lambda w: split(xz(tar([F("other.yaml", BASE)])), sq(w)), ".tar.xz", ERR(NOT_YAML), needs="mksquashfs")
    add("split_meta_unsupported", "metadata file is plain text", lambda w: split(b"not a tarball\n", sq(w)), ".txt",
        ERR(UNSUP), needs="mksquashfs")
    add("split_meta_v7_plain", "metadata file is an uncompressed V7 tar",
        lambda w: split(raw_tar(raw_member(b"metadata.yaml", BASE.encode(), b"0", None)), sq(w)), ".tar", ERR(UNSUP),
        needs="mksquashfs")
    add("split_meta_contains_rootfs_dir", "metadata tarball also holds rootfs/ (irrelevant); rootfs part is squashfs",
        lambda w: split(xz(tar(std(BASE))), sq(w)), ".tar.xz", OK(), needs="mksquashfs")
    # API-only multipart shapes (not expressible as `lxdimg inspect META ROOTFS`; recorded, not compared)
    add("api_parts_swapped", "multipart with rootfs part first, metadata second",
        lambda w: RawParts([("rootfs", "root.squashfs", sq(w)), ("metadata", "meta.tar.xz", META_XZ())]), ".tar.xz",
        ERR("Invalid multipart image"), compare=False, needs="mksquashfs")
    add("api_second_part_named_root", "multipart with second part named 'root'",
        lambda w: RawParts([("metadata", "meta.tar.xz", META_XZ()), ("root", "root.squashfs", sq(w))]), ".tar.xz",
        ERR("Invalid multipart image"), compare=False, needs="mksquashfs")
    add("api_only_metadata_part", "multipart with only the metadata part",
        lambda w: RawParts([("metadata", "meta.tar.xz", META_XZ())]), ".tar.xz", ERR("EOF"), compare=False)
    add("split_meta_arm64_vm", "metadata arm64 + qcow2 VM", lambda w: split(META_XZ(meta("arm64")), qcow2(w), "rootfs.img"),
        ".tar.xz", OK("virtual-machine", "aarch64"), needs="qemu-img")
    return C


def _zip(entries: list[E]) -> bytes:
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w") as z:
        for e in entries:
            zi = zipfile.ZipInfo(e.name, (2016, 3, 15, 0, 0, 0))
            z.writestr(zi, e.data if e.kind == "f" else b"")
    return bio.getvalue()


def _corrupt_member_checksum(t: bytes, index: int) -> bytes:
    """Flip the checksum of the index-th header (0-based) of a tar built by tar()."""
    b = bytearray(t)
    off, i = 0, 0
    while off < len(b):
        size = int(bytes(b[off + 124:off + 136]).strip(b"\x00 ") or b"0", 8)
        if i == index:
            b[off + 148:off + 156] = b"000000\x00 "
            return bytes(b)
        off += 512 + ((size + 511) // 512) * 512
        i += 1
    raise ValueError("member index out of range")


def _corrupt_first_checksum(t: bytes) -> bytes:
    return _corrupt_member_checksum(t, 0)


# ---------------------------------------------------------------------------
# Running a case against LXD
# ---------------------------------------------------------------------------


def write_case(case: Case, workdir: Path):
    built = case.build(workdir)
    if isinstance(built, RawParts):
        paths = []
        for i, (name, fname, data) in enumerate(built.parts):
            p = workdir / f"{case.name}.part{i}.{fname}"
            p.write_bytes(data)
            paths.append((name, p))
        fp = hashlib.sha256(b"".join(d for _, _, d in built.parts[:2])).hexdigest()
        return paths[0][1], (paths[1][1] if len(paths) > 1 else None), paths, fp
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


def multipart(parts: list[tuple[str, Path]]):
    datas = [p.read_bytes() for _, p in parts]
    while True:
        boundary = "lxdimgdiff" + "%032x" % random.getrandbits(128)
        if not any(boundary.encode() in d for d in datas):
            break
    out = io.BytesIO()
    for (name, path), data in zip(parts, datas):
        out.write(f"--{boundary}\r\n".encode())
        out.write(f'Content-Disposition: form-data; name="{name}"; filename="{path.name}"\r\n'.encode())
        out.write(b"Content-Type: application/octet-stream\r\n\r\n")
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def sql_delete_image(fp: str) -> bool:
    """Removes an image row the daemon cannot read back (a date past year 9999, facts §2.5): only
    its SQL shell can. True if a row was deleted."""
    cmd = (["lxd", "sql", "global"] if TARGET.startswith("lxd") else ["incus", "admin", "sql", "global"])
    q = f"DELETE FROM images WHERE fingerprint = '{fp}'"
    try:
        cp = subprocess.run(cmd + [q], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return b"Rows affected: 1" in cp.stdout


def remove_orphans(lxd: LXD, fp: str) -> list[str]:
    """Remove image files for fp that LXD does not know about (left by `Invalid instance type`)."""
    removed = []
    if fp and sql_delete_image(fp):
        removed.append(f"poisoned-row:{fp}")
    if lxd.image(fp) is not None:
        lxd.delete_image(fp)
        removed.append(f"db:{fp}")
    for p in (IMAGES_DIR / fp, IMAGES_DIR / f"{fp}.rootfs"):
        if p.exists():
            p.unlink()
            removed.append(p.name)
    return removed


def run_lxd(lxd: LXD, main: Path, rootfs: Optional[Path], part: Optional[str], local_fp: str) -> dict:
    pre = remove_orphans(lxd, local_fp)  # leftovers from an interrupted earlier run
    if isinstance(part, list):
        body, ctype = multipart(part)
        headers = {"Content-Type": ctype, f"{HEADER}-public": "false"}
    elif rootfs is None:
        body = main.read_bytes()
        headers = {"Content-Type": "application/octet-stream", f"{HEADER}-filename": main.name, f"{HEADER}-public": "false"}
    else:
        body, ctype = multipart([("metadata", main), (part, rootfs)])
        headers = {"Content-Type": ctype, f"{HEADER}-public": "false"}
    res = lxd.post_image(body, headers)
    res.update(type=None, architecture=None, properties=None, created_at=None, expires_at=None)
    if pre:
        res["pre_cleanup"] = pre
    if res["accepted"]:
        fp = res["fingerprint"]
        info = lxd.image(fp)
        if info is None:
            res["harness_error"] = f"image {fp} accepted but not found"
        else:
            res.update(type=info.get("type"), architecture=info.get("architecture"),
                       properties=info.get("properties"), created_at=info.get("created_at"),
                       expires_at=info.get("expires_at"))
            lxd.delete_image(fp)
        left = remove_orphans(lxd, fp)
        if left:
            res["harness_error"] = f"files left after DELETE: {left}"
    else:
        orphans = remove_orphans(lxd, local_fp)
        if orphans:
            res["orphans_removed"] = orphans
    return res


# ---------------------------------------------------------------------------
# lxdimg side and comparison
# ---------------------------------------------------------------------------


def resolve_lxdimg() -> Path:
    p = Path(os.environ.get("LXDIMG", "target/release/lxdimg"))
    if not p.is_absolute() and not p.exists():
        p = REPO / p
    return p


def run_lxdimg(exe: Path, main: Path, rootfs: Optional[Path], extra: tuple = ()) -> dict:
    cmd = [str(exe), "inspect", "--json", "--target", TARGET, *extra, str(main)] + ([str(rootfs)] if rootfs else [])
    try:
        cp = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    except subprocess.TimeoutExpired:
        return {"fatal": "timeout after 120s"}
    out = {"exit": cp.returncode, "stderr": cp.stderr.decode(errors="replace").strip()}
    if cp.returncode not in (0, 1):
        out["fatal"] = f"exit {cp.returncode}: {out['stderr'][:500]}"
        return out
    try:
        rep = json.loads(cp.stdout)
    except ValueError as e:
        out["fatal"] = f"stdout is not JSON ({e}): {cp.stdout[:300]!r}"
        return out
    out["report"] = rep
    try:
        v = rep["verdicts"][TARGET]
        md = rep.get("metadata") if isinstance(rep.get("metadata"), dict) else {}
        out.update(accepted=bool(v["accepted"]), error=v.get("error"), fingerprint=rep.get("fingerprint"),
                   judged=v["accepted"] is not None, reason=v.get("reason"),
                   type=rep.get("type"), architecture=v.get("architecture", rep.get("architecture")),
                   properties=md.get("properties", rep.get("properties")),
                   created_at=md.get("created"), expires_at=md.get("expires"))
    except (KeyError, TypeError) as e:
        out["fatal"] = f"report lacks verdicts[{TARGET!r}].accepted ({e!r})"
    return out


def compare(lxd_res: dict, li: dict) -> tuple[list[str], list[str]]:
    """Returns (mismatches, notes)."""
    if "fatal" in li:
        return [f"lxdimg failed: {li['fatal']}"], []
    mism, notes = [], []
    if not li.get("judged", True):
        # lxdimg says it cannot judge (accepted: null): never a wrong answer, but not an answer.
        return [], [f"not judged by lxdimg: {li.get('reason')}"]
    if li["accepted"] != lxd_res["accepted"]:
        mism.append(f"accepted: LXD={lxd_res['accepted']} lxdimg={li['accepted']}")
    expected_exit = 0 if li["accepted"] else 1
    if li["exit"] != expected_exit:
        mism.append(f"exit code {li['exit']} inconsistent with verdicts[{TARGET!r}].accepted={li['accepted']}")
    if lxd_res["accepted"]:
        for k in ("fingerprint", "type", "architecture"):
            if lxd_res.get(k) != li.get(k):
                mism.append(f"{k}: LXD={lxd_res.get(k)!r} lxdimg={li.get(k)!r}")
        # informational only (not part of the pass/fail contract)
        for k in ("properties", "created_at", "expires_at"):
            if li.get(k) is not None and lxd_res.get(k) is not None and li[k] != lxd_res[k]:
                notes.append(f"{k} differ (not counted): LXD={lxd_res[k]!r} lxdimg={li[k]!r}")
    else:
        err = lxd_res.get("error") or ""
        if err.startswith("yaml:"):
            if li.get("error") != err:
                notes.append(f"yaml error text (not compared): LXD={err!r} lxdimg={li.get('error')!r}")
        elif li.get("error") != err:
            mism.append(f"error: LXD={err!r} lxdimg={li.get('error')!r}")
    return mism, notes


def check_facts(case: Case, res: dict, local_fp: str) -> Optional[str]:
    """Compare the observed LXD result with the facts-file expectation. None = agrees."""
    exp = case.expect
    if exp is None:
        return None
    if exp[0] == "ok":
        _, type_, arch, extra = exp
        if not res["accepted"]:
            return f"facts say accepted ({type_}, {arch}); LXD rejected: {res.get('error')!r}"
        problems = []
        if res["type"] != type_:
            problems.append(f"type {res['type']} (facts {type_})")
        if res["architecture"] != arch:
            problems.append(f"architecture {res['architecture']} (facts {arch})")
        if res["fingerprint"] != local_fp:
            problems.append(f"fingerprint {res['fingerprint']} != sha256 {local_fp}")
        if "properties" in extra and res.get("properties") != extra["properties"]:
            problems.append(f"properties {res.get('properties')} (facts {extra['properties']})")
        return "; ".join(problems) or None
    _, msg, match = exp
    if res["accepted"]:
        return f"facts say rejected with {msg!r}; LXD accepted"
    err = res.get("error") or ""
    ok = (err == msg) if match == "exact" else (err.startswith("yaml:") and msg in err)
    return None if ok else f"facts say {msg!r} ({match}); LXD said {err!r}"


def short(res: dict) -> str:
    if res.get("fatal"):
        return "FATAL"
    if res.get("accepted"):
        return f"ok {res.get('type')} {res.get('architecture')} {str(res.get('fingerprint'))[:12]}"
    e = (res.get("error") or "").replace("\n", "\\n")
    return "rejected: " + (e if len(e) <= 70 else e[:67] + "...")


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def select(all_cases: list[Case], patterns: list[str]) -> list[Case]:
    if not patterns:
        return all_cases

    def match(name):
        for p in patterns:
            if any(ch in p for ch in "*?[") and fnmatch.fnmatchcase(name, p):
                return True
            if p in name:
                return True
        return False

    return [c for c in all_cases if match(c.name)]


def open_sources(args, log=sys.stdout):
    """What a run compares: recorded LXD answers (--from-expected) or a live LXD, and the lxdimg
    binary (unless --lxd-only). Returns (recorded, lxd, exe), or an exit code after a message."""
    recorded, lxd, exe = None, None, None
    if args.from_expected:
        recorded = {}
        for line in Path(args.from_expected).read_text().splitlines():
            if line.strip():
                d = json.loads(line)
                recorded[d["case"]] = d
    else:
        lxd = LXD()
        try:
            info = lxd.ping()
        except (OSError, LXDError) as e:
            print(f"cannot reach the daemon on {SOCKET}: {e}\n(run scripts/lxd-setup.sh as root)", file=sys.stderr)
            return 2
        print(f"# {info.get('environment', {}).get('server_name', 'daemon')} {info.get('environment', {}).get('server_version')} via {SOCKET}, compared with verdicts[{TARGET!r}]", file=log)
    if not args.lxd_only:
        exe = resolve_lxdimg()
        if not exe.exists():
            print(f"lxdimg binary not found at {exe} (set LXDIMG or build it; use --lxd-only to skip)", file=sys.stderr)
            return 2
    return recorded, lxd, exe


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--daemon", choices=sorted(DAEMONS), default="lxd",
                    help="the daemon to compare with (its lxdimg target: lxd-5.0 or incus-6.0)")
    ap.add_argument("--lxd-only", action="store_true", help="only import into LXD; print its results as JSON lines")
    ap.add_argument("--from-expected", metavar="JSONL",
                    help="use recorded LXD results (e.g. tests/lxd_expected.jsonl) instead of a live daemon")
    ap.add_argument("--keep", metavar="DIR", help="write generated files to DIR and keep them")
    ap.add_argument("-k", dest="patterns", action="append", default=[], metavar="PATTERN",
                    help="run only cases whose name contains PATTERN (or matches it as a glob); repeatable")
    ap.add_argument("--list", action="store_true", help="list cases and exit")
    ap.add_argument("-v", "--verbose", action="store_true", help="print full details for every case")
    args = ap.parse_args()
    use_daemon(args.daemon)

    chosen = select(cases(), args.patterns)
    if args.list:
        for c in chosen:
            print(f"{c.name:34} {c.desc}")
        return 0
    if not chosen:
        print("no case matches", file=sys.stderr)
        return 2

    log = sys.stderr if args.lxd_only else sys.stdout

    if args.from_expected and args.lxd_only:
        ap.error("--from-expected and --lxd-only are exclusive")
    sources = open_sources(args, log)
    if isinstance(sources, int):
        return sources
    recorded, lxd, exe = sources
    if exe:
        print(f"# lxdimg: {exe}", file=log)

    if args.keep:
        workdir = Path(args.keep)
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="lxd-differential-"))

    before = set(os.listdir(IMAGES_DIR)) if (lxd and IMAGES_DIR.is_dir()) else set()
    n_ok = n_mismatch = n_skip = n_lxdonly = 0
    mismatches, facts_diffs, harness_errors = [], [], []
    try:
        for case in chosen:
            if case.needs and not shutil.which(case.needs):
                print(f"{case.name:34} SKIP (needs {case.needs})", file=log)
                n_skip += 1
                continue
            main_p, rootfs_p, part, local_fp = write_case(case, workdir)
            if recorded is not None:
                if case.name not in recorded:
                    print(f"{case.name:34} SKIP (not in {args.from_expected})", file=log)
                    n_skip += 1
                    continue
                res = recorded[case.name]
            else:
                try:
                    res = run_lxd(lxd, main_p, rootfs_p, part, local_fp)
                except (OSError, LXDError, http.client.HTTPException) as e:
                    res = {"accepted": False, "error": None, "fingerprint": None,
                           "harness_error": f"{type(e).__name__}: {e}"}
                kind = "api-multipart" if isinstance(part, list) else ("split" if rootfs_p else "unified")
                if isinstance(part, list):
                    part = [n for n, _ in part]
                res = {"case": case.name, "kind": kind, "part": part,
                       "file": main_p.name, "rootfs": rootfs_p.name if rootfs_p else None,
                       "local_fingerprint": local_fp, **res}
                fd = check_facts(case, res, local_fp)
                res["facts"] = "agree" if fd is None and case.expect is not None else (fd or "no claim")
                if fd:
                    facts_diffs.append((case.name, fd))
            if res.get("harness_error"):
                harness_errors.append((case.name, res["harness_error"]))

            if args.lxd_only:
                print(json.dumps(res, sort_keys=False), flush=True)
                flag = "NO-ANSWER" if res.get("harness_error") else (
                    "" if res.get("facts") in ("agree", "no claim") else "FACTS-DIFF")
                print(f"{case.name:34} LXD: {short(res):80} {flag}", file=log, flush=True)
                n_lxdonly += 1
                continue

            li = run_lxdimg(exe, main_p, rootfs_p, case.lxdimg_args)
            if not case.compare:
                print(f"{case.name:34} LXD: {short(res):60} | lxdimg: {short(li):60} | LXD-ONLY (not comparable)", file=log)
                n_lxdonly += 1
                continue
            mism, notes = compare(res, li)
            if res.get("harness_error"):
                mism.insert(0, f"no definite LXD answer: {res['harness_error']}")
            status = "MISMATCH" if mism else "OK"
            print(f"{case.name:34} LXD: {short(res):60} | lxdimg: {short(li):60} | {status}", file=log, flush=True)
            for m in mism:
                print(f"    - {m}", file=log)
            if mism and case.hint:
                print(f"    ! hint: {case.hint}", file=log)
            for n in notes:
                print(f"    . {n}", file=log)
            if args.verbose:
                print(f"    LXD: {json.dumps(res)}\n    lxdimg: {json.dumps(li.get('report'))}", file=log)
            if mism:
                n_mismatch += 1
                mismatches.append((case.name, case.desc, mism,
                                   str(main_p) + (f" {rootfs_p}" if rootfs_p else "")))
            else:
                n_ok += 1
    finally:
        if lxd is not None:
            leaked = []
            try:
                left_images = lxd.images()
                if left_images:
                    leaked.append(f"images still in LXD: {left_images}")
                if IMAGES_DIR.is_dir():
                    new = sorted(set(os.listdir(IMAGES_DIR)) - before)
                    if new:
                        leaked.append(f"new entries in {IMAGES_DIR}: {new}")
            except (OSError, LXDError) as e:
                leaked.append(f"could not verify cleanup: {e}")
            for l in leaked:
                print(f"# WARNING: {l}", file=sys.stderr)
                harness_errors.append(("cleanup", l))
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    print("", file=log)
    if facts_diffs:
        print(f"# {len(facts_diffs)} observation(s) differ from lxd-image-facts.md (the real LXD wins):", file=log)
        for n, d in facts_diffs:
            print(f"#   {n}: {d}", file=log)
    if harness_errors:
        print(f"# {len(harness_errors)} harness problem(s):", file=log)
        for n, d in harness_errors:
            print(f"#   {n}: {d}", file=log)
    if args.lxd_only:
        print(f"# summary: {n_lxdonly} cases imported, {n_skip} skipped, {len(facts_diffs)} facts differences, "
              f"{len(harness_errors)} harness problems", file=log)
        return 1 if harness_errors else 0
    if mismatches:
        print(f"# {len(mismatches)} mismatch(es):", file=log)
        for n, desc, mism, files in mismatches:
            print(f"#   {n} ({desc}): " + "; ".join(mism), file=log)
            hint = next((c.hint for c in chosen if c.name == n), "")
            if hint:
                print(f"#     hint: {hint}", file=log)
            if args.keep:
                print(f"#     files: {files}", file=log)
    print(f"# summary: {n_ok} OK, {n_mismatch} MISMATCH, {n_lxdonly} LXD-only, {n_skip} skipped", file=log)
    return 1 if (mismatches or harness_errors) else 0


if __name__ == "__main__":
    sys.exit(main())
