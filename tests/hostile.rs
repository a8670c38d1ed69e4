//! The hostile corpus (issue 9): inputs built to exhaust memory or time, generated here (never
//! committed), each answered with a finding or verdict that names the problem (and its offset
//! where it has one), within 64 MiB + the stream's declared decoder window, in time linear in the
//! bytes read and decoded.
//!
//! Memory is measured twice: a counting global allocator (current and peak bytes of every Rust
//! allocation made while the case runs), and the process's peak RSS growth (`/proc/self/status`
//! VmHWM after `clear_refs`, which also sees libzstd's C allocations). Both must stay within the
//! bound. Time is taken with `Instant`; the assertion is a generous per-MiB bound, never a tight
//! absolute figure.
//!
//! `make hostile` (run by `make test`) runs this in release with `--nocapture`, which prints the
//! per-class table. A debug `cargo test` runs every class too, but the bombs stop at a 64 MiB
//! decode limit instead of the default 1 GiB (set `HOSTILE_FULL=1` to use the defaults there too);
//! the release run decodes the default-limit bombs in full.

mod common;
use common::*;
use lxdimg::{Inspector, Options, Report};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Memory accounting.

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        CURRENT.fetch_sub(l.size(), Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new >= l.size() {
                let now = CURRENT.fetch_add(new - l.size(), Relaxed) + new - l.size();
                PEAK.fetch_max(now, Relaxed);
            } else {
                CURRENT.fetch_sub(l.size() - new, Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// `VmRSS` or `VmHWM` of this process, in bytes.
fn proc_status(field: &str) -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets VmHWM to the current RSS (Linux ≥ 4.0); false where that is not allowed.
fn reset_hwm() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The tests of this binary run one at a time: the allocation counters are process-wide.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

const MIB: usize = 1 << 20;
/// The memory every case must stay within, besides its declared decoder window.
const BUDGET: usize = 64 * MIB;

// ---------------------------------------------------------------------------------------------
// Fast generators (no tar crate: a 300 000-entry archive is built in a few milliseconds).

/// A ustar header with GNU magic (as GNU tar writes), its checksum set.
fn hdr(name: &[u8], size: u64, kind: u8) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    h[100..107].copy_from_slice(if kind == b'5' { b"0000755" } else { b"0000644" });
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    let s = format!("{size:011o}");
    if s.len() <= 11 {
        h[124..135].copy_from_slice(s.as_bytes());
    } else {
        // Base-256, as GNU tar writes sizes of 8 GiB and more.
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    h[136..147].copy_from_slice(b"15000000000");
    h[156] = kind;
    h[257..265].copy_from_slice(b"ustar  \0");
    set_cksum(&mut h);
    h
}

fn set_cksum(h: &mut [u8; 512]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// Appends a member (header, data, padding).
fn member(t: &mut Vec<u8>, name: &[u8], kind: u8, data: &[u8]) {
    t.extend_from_slice(&hdr(name, data.len() as u64, kind));
    t.extend_from_slice(data);
    t.resize(t.len().next_multiple_of(512), 0);
}

/// A PAX extended header (`x`) holding `records` (already formatted).
fn pax(t: &mut Vec<u8>, records: &[u8]) {
    member(t, b"./PaxHeaders/x", b'x', records);
}

/// One PAX record, its length prefix computed.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = 3 + key.len() + value.len(); // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

const META: &str = "architecture: x86_64\ncreation_date: 1704067200\nproperties:\n  description: hostile\n  os: debian\n  release: bookworm\n";

/// metadata.yaml and a small rootfs, without the end marker.
fn image_start(meta: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    member(&mut t, b"metadata.yaml", b'0', meta);
    member(&mut t, b"rootfs/", b'5', b"");
    member(&mut t, b"rootfs/etc/", b'5', b"");
    t
}

fn end_marker(t: &mut Vec<u8>) {
    t.extend_from_slice(&[0u8; 1024]);
}

fn valid_tar() -> Vec<u8> {
    let mut t = image_start(META.as_bytes());
    member(&mut t, b"rootfs/etc/hostname", b'0', b"hostile\n");
    end_marker(&mut t);
    t
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Codec {
    Gzip,
    Bzip2,
    Xz,
    Lzma,
    Zstd,
}

impl Codec {
    const ALL: [Codec; 5] = [
        Codec::Gzip,
        Codec::Bzip2,
        Codec::Xz,
        Codec::Lzma,
        Codec::Zstd,
    ];

    fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Bzip2 => "bzip2",
            Codec::Xz => "xz",
            Codec::Lzma => "lzma",
            Codec::Zstd => "zstd",
        }
    }

    /// One complete stream (member, frame) of `data`, fast settings.
    fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Codec::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Codec::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(9));
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Codec::Xz => {
                let mut w = lzma_rust2::XzWriter::new(Vec::new(), xz_opts()).unwrap();
                w.write_all(data).unwrap();
                w.finish().unwrap()
            }
            Codec::Lzma => {
                let o = lzma_rust2::LzmaOptions::with_preset(0);
                let mut w = lzma_rust2::LzmaWriter::new_use_header(Vec::new(), &o, None).unwrap();
                w.write_all(data).unwrap();
                w.finish().unwrap()
            }
            Codec::Zstd => zstd(data),
        }
    }

    /// The decoder window the stream declares (what the memory bound allows on top of 64 MiB).
    fn window(self, stream: &[u8]) -> usize {
        match self {
            Codec::Gzip => 32 << 10,
            // bzip2 -9: 900 kB blocks, decoded with 4 bytes per block byte.
            Codec::Bzip2 => 4 * 900_000,
            // Preset 0: a 256 KiB dictionary.
            Codec::Xz | Codec::Lzma => 256 << 10,
            Codec::Zstd => zstd_window(stream),
        }
    }
}

fn xz_opts() -> lzma_rust2::XzOptions {
    lzma_rust2::XzOptions::with_preset(0)
}

/// The window a zstd frame header declares (RFC 8878 §3.1.1.1).
fn zstd_window(frame: &[u8]) -> usize {
    let fhd = frame[4];
    if fhd & 0x20 != 0 {
        // Single segment: the window is the content size.
        let fcs = match fhd >> 6 {
            0 => u64::from(frame[5]),
            1 => u64::from(u16::from_le_bytes([frame[5], frame[6]])) + 256,
            2 => u64::from(u32::from_le_bytes(frame[5..9].try_into().unwrap())),
            _ => u64::from_le_bytes(frame[5..13].try_into().unwrap()),
        };
        return fcs as usize;
    }
    let wd = frame[5];
    let log = 10 + (wd >> 3) as u32;
    let base = 1usize << log;
    base + (base / 8) * (wd & 7) as usize
}

/// A bomb: a small image whose `rootfs/zeros` declares `declared` bytes, followed by
/// concatenated streams of `unit` zeros until `total` decoded bytes (all zeros). `metadata_first`
/// puts metadata.yaml before the zeros (LXD's verdict is settled before the bomb), else after.
fn bomb(codec: Codec, unit: usize, total: u64, metadata_first: bool) -> Vec<u8> {
    let mut head = Vec::new();
    if metadata_first {
        head = image_start(META.as_bytes());
    } else {
        member(&mut head, b"rootfs/", b'5', b"");
    }
    head.extend_from_slice(&hdr(b"rootfs/zeros", total, b'0'));
    let mut out = codec.compress(&head);
    if codec == Codec::Lzma {
        // .lzma has no concatenated streams: one stream of everything.
        let mut all = head;
        all.resize(all.len() + total as usize, 0);
        return codec.compress(&all);
    }
    let z = codec.compress(&vec![0u8; unit]);
    let mut left = total;
    while left > 0 {
        out.extend_from_slice(&z);
        left = left.saturating_sub(unit as u64);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Running a case.

struct Row {
    class: &'static str,
    case: String,
    read: usize,
    decoded: u64,
    time: Duration,
    peak: usize,
    rss: Option<usize>,
    bound: usize,
}

#[derive(Default)]
struct Corpus {
    rows: Vec<Row>,
}

fn heavy() -> bool {
    !cfg!(debug_assertions) || std::env::var_os("HOSTILE_FULL").is_some()
}

/// The decode limit the bombs are tested at: the default in release, 64 MiB in a debug build.
fn bomb_opts() -> Options {
    let mut o = test_options(false);
    if !heavy() {
        o.max_decoded_bytes = 64 << 20;
    }
    o
}

fn inspect_measured(files: &[&[u8]], opts: Options) -> (Report, Duration, usize, Option<usize>) {
    let rss_ok = reset_hwm();
    let rss_before = proc_status("VmRSS:");
    let base = CURRENT.load(Relaxed);
    PEAK.store(base, Relaxed);
    let t = Instant::now();
    let mut insp = Inspector::new(opts);
    for (i, f) in files.iter().enumerate() {
        if i == 1 {
            insp.start_rootfs().unwrap();
        }
        // 128 KiB pushes, as the CLI reads.
        for c in f.chunks(128 << 10) {
            insp.push(c);
        }
    }
    let r = insp.finish();
    let time = t.elapsed();
    let peak = PEAK.load(Relaxed).saturating_sub(base);
    let rss = match (rss_ok, rss_before, proc_status("VmHWM:")) {
        (true, Some(b), Some(h)) => Some(h.saturating_sub(b)),
        _ => None,
    };
    (r, time, peak, rss)
}

impl Corpus {
    /// Inspects `files`, checks the bounds, and hands the report to `check`.
    fn case(
        &mut self,
        class: &'static str,
        case: impl Into<String>,
        files: &[&[u8]],
        window: usize,
        opts: Options,
        check: impl FnOnce(&Report),
    ) {
        let case = case.into();
        if let Some(dir) = std::env::var_os("HOSTILE_DUMP") {
            // Keeps the inputs for a look with the CLI: HOSTILE_DUMP=DIR.
            for (i, f) in files.iter().enumerate() {
                let name = format!(
                    "{class}-{}-{i}",
                    case.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
                );
                std::fs::write(std::path::Path::new(&dir).join(name), f).unwrap();
            }
        }
        let (r, time, peak, rss) = inspect_measured(files, opts);
        let read: usize = files.iter().map(|f| f.len()).sum();
        let decoded: u64 = r.files.iter().filter_map(|f| f.decoded_size).sum();
        let bound = BUDGET + window;
        assert!(
            peak <= bound,
            "{class} / {case}: {peak} bytes allocated at peak, over {bound}"
        );
        if let Some(rss) = rss {
            assert!(
                rss <= bound,
                "{class} / {case}: peak RSS grew by {rss} bytes, over {bound}"
            );
        }
        // Linear time: per MiB read or decoded, plus a fixed allowance for work bounded by a
        // constant (YAML alias expansion stops after at most `YAML_NODES_MAX` nodes). Generous:
        // 10x or more above what the release build takes; a debug build is slower still.
        let mib = (read as f64 + decoded as f64) / MIB as f64;
        let (fixed, per_mib) = if cfg!(debug_assertions) {
            (20.0, 0.1)
        } else {
            (5.0, 0.02)
        };
        let allowed = fixed + per_mib * mib;
        assert!(
            time.as_secs_f64() <= allowed,
            "{class} / {case}: {:.2} s for {mib:.1} MiB read + decoded (allowed {allowed:.1} s)",
            time.as_secs_f64()
        );
        // The report is always valid JSON, whatever the input held.
        let json = serde_json::to_string(&r).unwrap();
        serde_json::from_str::<serde_json::Value>(&json).unwrap();
        check(&r);
        self.rows.push(Row {
            class,
            case,
            read,
            decoded,
            time,
            peak,
            rss,
            bound,
        });
    }

    fn print(&self) {
        let mut out = String::new();
        out += "\nhostile corpus: every case (bytes read, decoded, time, peak Rust allocation, peak RSS growth)\n";
        for r in &self.rows {
            out += &format!(
                "  {:<14} {:<44} {:>11} B read {:>12} B decoded {:>8.3} s {:>7.1} MiB {:>7} MiB RSS (bound {} MiB)\n",
                r.class,
                r.case,
                r.read,
                r.decoded,
                r.time.as_secs_f64(),
                r.peak as f64 / MIB as f64,
                r.rss
                    .map(|x| format!("{:.1}", x as f64 / MIB as f64))
                    .unwrap_or_else(|| "-".into()),
                r.bound / MIB
            );
        }
        out +=
            "\nclass          | cases | worst time | peak memory (allocator) | peak RSS growth\n";
        out += "---------------|-------|------------|-------------------------|----------------\n";
        let mut classes: Vec<&str> = self.rows.iter().map(|r| r.class).collect();
        classes.dedup();
        for c in classes {
            let rows: Vec<&Row> = self.rows.iter().filter(|r| r.class == c).collect();
            let worst = rows.iter().map(|r| r.time).max().unwrap();
            let peak = rows.iter().map(|r| r.peak).max().unwrap();
            let rss = rows.iter().filter_map(|r| r.rss).max();
            out += &format!(
                "{:<14} | {:>5} | {:>8.3} s | {:>19.1} MiB | {}\n",
                c,
                rows.len(),
                worst.as_secs_f64(),
                peak as f64 / MIB as f64,
                rss.map(|x| format!("{:.1} MiB", x as f64 / MIB as f64))
                    .unwrap_or_else(|| "-".into())
            );
        }
        println!("{out}");
    }
}

fn codes(r: &Report) -> Vec<&'static str> {
    r.findings.iter().map(|f| f.code.as_str()).collect()
}

fn finding<'a>(r: &'a Report, code: &str) -> &'a lxdimg::report::Finding {
    r.findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no {code} finding: {:#?}", r.findings))
}

fn lxd(r: &Report) -> &lxdimg::report::Verdict {
    &r.verdicts["lxd-5.0"]
}

// ---------------------------------------------------------------------------------------------
// The classes.

fn bombs(c: &mut Corpus) {
    let opts = bomb_opts();
    let limit = opts.max_decoded_bytes;
    // Declared and decoded: four times the limit, so the limit cuts it.
    let total = limit * 4;
    for codec in Codec::ALL {
        // .lzma cannot be concatenated: one stream of everything, so keep it at 2x a small limit.
        let (opts, total) = if codec == Codec::Lzma {
            let mut o = test_options(false);
            o.max_decoded_bytes = 64 << 20;
            (o, 128 << 20)
        } else {
            (opts.clone(), total)
        };
        let limit = opts.max_decoded_bytes;
        for metadata_first in [true, false] {
            let img = bomb(codec, 64 << 20, total, metadata_first);
            let window = codec.window(&img);
            let name = format!(
                "{} {} MiB of zeros, metadata {}",
                codec.name(),
                total >> 20,
                if metadata_first { "first" } else { "after" }
            );
            c.case("bomb", name, &[&img], window, opts.clone(), |r| {
                let f = finding(r, "decompression-bomb");
                let off = f.offset.expect("offset");
                assert!(off > 0 && off <= img.len() as u64, "{off}");
                assert!(
                    f.message.contains("decompression bomb")
                        && f.message.contains(&format!("byte {off}")),
                    "{}",
                    f.message
                );
                let decoded = r.files[0].decoded_size.unwrap();
                assert!(decoded > limit && decoded <= limit + (4 << 20), "{decoded}");
                // The fingerprint covers every byte.
                assert_eq!(r.fingerprint.as_deref(), Some(sha256_hex(&img).as_str()));
                let v = lxd(r);
                if metadata_first {
                    assert_eq!(v.accepted, Some(true), "{v:?}");
                } else {
                    assert_eq!(v.accepted, None, "{v:?} {:?}", r.findings);
                    assert!(v.reason.as_ref().unwrap().contains("decompression bomb"));
                }
                assert_eq!(v.creatable.ok, None, "{:?}", v.creatable);
                assert_eq!(
                    v.creatable.code,
                    Some(lxdimg::report::CreatableCode::DecompressionBomb)
                );
            });
        }
    }

    // Zero blocks after the end marker: LXD's verdict is settled at the marker; the zeros still
    // count as decoded bytes.
    for codec in [Codec::Gzip, Codec::Zstd] {
        let mut img = codec.compress(&valid_tar());
        let z = codec.compress(&vec![0u8; 64 << 20]);
        let units = (total >> 26) as usize;
        for _ in 0..units {
            img.extend_from_slice(&z);
        }
        let window = codec.window(&img);
        let name = format!("{} zero blocks after the end", codec.name());
        c.case("bomb", name, &[&img], window, opts.clone(), |r| {
            let f = finding(r, "decompression-bomb");
            assert!(f.offset.is_some());
            assert_eq!(r.tar.as_ref().unwrap().end, lxdimg::report::TarEnd::Marker);
            assert_eq!(lxd(r).accepted, Some(true));
            assert_eq!(
                lxd(r).creatable.code,
                Some(lxdimg::report::CreatableCode::DecompressionBomb)
            );
        });
    }

    // A realistic stream (about 3:1) past the size limit is no bomb: the ratio limit holds.
    let mut t = image_start(META.as_bytes());
    let size: usize = if heavy() { 1200 << 20 } else { 80 << 20 };
    t.extend_from_slice(&hdr(b"rootfs/text", size as u64, b'0'));
    let mut x: u32 = 1;
    let mut data = Vec::with_capacity(size);
    while data.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.extend_from_slice(format!("line {} {}\n", x % 100, x % 7).as_bytes());
    }
    data.truncate(size);
    t.extend_from_slice(&data);
    drop(data);
    end_marker(&mut t);
    let img = Codec::Zstd.compress(&t);
    drop(t);
    let window = Codec::Zstd.window(&img);
    let ratio = size / img.len();
    c.case(
        "bomb",
        format!("zstd {} MiB at {ratio}:1 (no bomb)", size >> 20),
        &[&img],
        window,
        opts.clone(),
        |r| {
            assert!(
                !codes(r).contains(&"decompression-bomb"),
                "{:?}",
                r.findings
            );
            assert_eq!(lxd(r).creatable.ok, Some(true), "{:?}", lxd(r));
        },
    );
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn many_entries(c: &mut Corpus) {
    // 300 000 entries before metadata.yaml: LXD decompresses all of them before it can judge.
    let mut t = Vec::with_capacity(310_000 * 512);
    member(&mut t, b"rootfs/", b'5', b"");
    for i in 0..300_000u32 {
        let name = format!("rootfs/f{i:06}");
        t.extend_from_slice(&hdr(name.as_bytes(), 0, b'0'));
    }
    member(&mut t, b"metadata.yaml", b'0', META.as_bytes());
    end_marker(&mut t);
    let img = Codec::Gzip.compress(&t);
    c.case(
        "entries",
        "300 000 entries, metadata.yaml last",
        &[&img],
        32 << 10,
        test_options(false),
        |r| {
            assert_eq!(r.tar.as_ref().unwrap().entries, 300_002);
            assert!(lxd(r).is_accepted());
            let f = finding(r, "metadata-late");
            assert!(f.message.contains("300001 rootfs entries"), "{}", f.message);
        },
    );
}

fn pax_cases(c: &mut Corpus) {
    let opts = test_options(false);
    // Absurd sizes in PAX records.
    for (what, value) in [
        ("size 2^64", b"18446744073709551616".as_slice()),
        ("size 10^30", b"1000000000000000000000000000000".as_slice()),
        ("size -1", b"-1".as_slice()),
    ] {
        let mut t = image_start(META.as_bytes());
        pax(&mut t, &pax_record("size", value));
        member(&mut t, b"rootfs/etc/big", b'0', b"x");
        end_marker(&mut t);
        c.case(
            "pax",
            format!("record {what}"),
            &[&t],
            0,
            opts.clone(),
            |r| {
                let f = finding(r, "tar-error");
                assert!(f.message.contains("PAX"), "{}", f.message);
                assert!(f.message.contains("offset"), "{}", f.message);
            },
        );
    }
    // A record whose length prefix claims more than the header holds.
    let mut t = image_start(META.as_bytes());
    pax(&mut t, b"99999999999 path=x\n");
    member(&mut t, b"rootfs/etc/x", b'0', b"x");
    end_marker(&mut t);
    c.case(
        "pax",
        "record length 99999999999",
        &[&t],
        0,
        opts.clone(),
        |r| {
            let f = finding(r, "tar-error");
            assert!(
                f.message.contains("PAX") && f.message.contains("offset"),
                "{}",
                f.message
            );
        },
    );
    // An extended header whose own size is 8 GiB: over Go's 1 MiB limit, never buffered.
    let mut t = image_start(META.as_bytes());
    t.extend_from_slice(&hdr(b"./PaxHeaders/big", 8 << 30, b'x'));
    t.extend(std::iter::repeat_n(b'1', 3 << 20));
    let img = Codec::Gzip.compress(&t);
    c.case(
        "pax",
        "extended header of 8 GiB",
        &[&img],
        32 << 10,
        opts.clone(),
        |r| {
            let f = finding(r, "tar-error");
            assert!(
                f.message.contains("too long") && f.message.contains("offset"),
                "{}",
                f.message
            );
        },
    );
    // 10 000 PAX headers in a row (Go merges them into the next entry).
    for broken in [false, true] {
        let mut t = image_start(META.as_bytes());
        for i in 0..10_000u32 {
            pax(
                &mut t,
                &pax_record("path", format!("rootfs/etc/chained-{i}").as_bytes()),
            );
        }
        if broken {
            pax(&mut t, b"3 x\n");
        }
        member(&mut t, b"rootfs/etc/ignored-name", b'0', b"data\n");
        end_marker(&mut t);
        let name = if broken {
            "10 000 chained PAX headers, last malformed"
        } else {
            "10 000 chained PAX headers"
        };
        c.case("pax", name, &[&t], 0, opts.clone(), |r| {
            if broken {
                let f = finding(r, "tar-error");
                assert!(
                    f.message.contains("PAX") && f.message.contains("offset"),
                    "{}",
                    f.message
                );
            } else {
                assert!(lxd(r).is_accepted(), "{:?}", lxd(r));
                assert_eq!(r.tar.as_ref().unwrap().entries, 4);
            }
        });
    }
}

fn long_names(c: &mut Corpus) {
    let opts = test_options(false);
    for kind in [b'L', b'K'] {
        // Before the rootfs, so that LXD's walk meets it.
        let mut t = Vec::new();
        member(&mut t, b"metadata.yaml", b'0', META.as_bytes());
        let name = vec![b'n'; 2 << 20];
        member(&mut t, b"././@LongLink", kind, &name);
        member(&mut t, b"rootfs/", b'5', b"");
        end_marker(&mut t);
        let img = Codec::Xz.compress(&t);
        let what = if kind == b'L' { "name" } else { "link" };
        c.case(
            "long-names",
            format!("2 MiB GNU long {what}"),
            &[&img],
            Codec::Xz.window(&img),
            opts.clone(),
            |r| {
                let f = finding(r, "tar-error");
                assert!(
                    f.message.contains("too long") && f.message.contains("offset"),
                    "{}",
                    f.message
                );
                assert_eq!(
                    lxd(r).error.as_deref(),
                    Some("archive/tar: header field too long")
                );
            },
        );
    }
}

fn yaml_cases(c: &mut Corpus) {
    let opts = test_options(false);
    // An 8 MiB metadata.yaml: LXD 5.0 stops at its 1 MiB cap; lxdimg keeps 4 MiB at most.
    let mut yaml = META.to_string();
    yaml += "  filler: \"";
    while yaml.len() < 8 << 20 {
        yaml += "0123456789abcdef";
    }
    yaml += "\"\n";
    let mut t = image_start(yaml.as_bytes());
    end_marker(&mut t);
    let img = Codec::Gzip.compress(&t);
    c.case(
        "yaml",
        "8 MiB metadata.yaml",
        &[&img],
        32 << 10,
        opts.clone(),
        |r| {
            let e = lxd(r).error.as_deref().unwrap_or_default();
            assert!(
                e.contains("limit") || e.contains("too large") || e.contains("1048576"),
                "{:?}",
                lxd(r)
            );
            let incus7 = &r.verdicts["incus-6.0"];
            assert!(
                incus7.accepted.is_none() || incus7.accepted == Some(false),
                "{incus7:?}"
            );
        },
    );
    // 16 metadata.yaml entries of 4 MiB each (LXD decodes each on top of the previous one):
    // lxdimg keeps 8 MiB of them together.
    let doc = {
        let mut d = META.to_string();
        d += "  filler: \"";
        while d.len() < (4 << 20) - 16 {
            d += "0123456789abcdef";
        }
        d + "\"\n"
    };
    let mut t = Vec::new();
    for _ in 0..16 {
        member(&mut t, b"metadata.yaml", b'0', doc.as_bytes());
    }
    member(&mut t, b"rootfs/", b'5', b"");
    end_marker(&mut t);
    let img = Codec::Gzip.compress(&t);
    c.case(
        "yaml",
        "16 metadata.yaml entries of 4 MiB",
        &[&img],
        32 << 10,
        opts.clone(),
        |r| {
            assert_eq!(lxd(r).accepted, Some(false), "{:?}", lxd(r));
            let old = &r.verdicts["incus-6"]; // no 1 MiB cap
            assert!(old.accepted.is_none(), "{old:?}");
            assert!(
                old.reason.as_deref().unwrap().contains("not kept whole"),
                "{old:?}"
            );
            finding(r, "metadata-duplicate");
        },
    );
    // Half a million tiny nodes in 1 MiB (LXD's cap), two million in 4 MiB (uncapped targets):
    // lxdimg builds at most YAML_TREE_NODES_MAX of them and does not judge the rest.
    for mib in [1usize, 4] {
        let mut d = format!("{META}x: [a");
        while d.len() < (mib << 20) - 8 {
            d += ",a";
        }
        d += "]\n";
        let mut t = image_start(d.as_bytes());
        end_marker(&mut t);
        c.case(
            "yaml",
            format!("{mib} MiB of tiny YAML nodes"),
            &[&t],
            0,
            opts.clone(),
            |r| {
                let v = &r.verdicts["incus-6"]; // no 1 MiB cap
                assert_eq!(v.accepted, None, "{v:?}");
                assert!(v.reason.as_deref().unwrap().contains("YAML nodes"), "{v:?}");
            },
        );
    }
    // Nested 500 000 deep, flow and block style.
    for (what, doc) in [
        (
            "flow sequences",
            format!("{META}x: {}", "[".repeat(500_000)),
        ),
        ("flow maps", format!("{META}x: {}", "{a: ".repeat(500_000))),
        (
            "block sequences",
            format!("{META}x:\n{}y\n", "- ".repeat(500_000)),
        ),
    ] {
        let mut t = image_start(doc.as_bytes());
        end_marker(&mut t);
        c.case(
            "yaml",
            format!("nested 500 000 deep: {what}"),
            &[&t],
            0,
            opts.clone(),
            |r| {
                assert_eq!(lxd(r).accepted, Some(false), "{:?}", lxd(r));
                assert!(
                    lxd(r).error.as_deref().unwrap().starts_with("yaml: "),
                    "{:?}",
                    lxd(r)
                );
            },
        );
    }
    // Alias bombs: billion laughs in sequences, and through merge keys.
    let mut laughs = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..12 {
        let p = i - 1;
        laughs += &format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        );
    }
    let mut merges = String::from("m0: &m0 {a: b}\n");
    for i in 1..40 {
        merges += &format!(
            "m{i}: &m{i} {{<<: [*m{p}, *m{p}, *m{p}, *m{p}]}}\n",
            p = i - 1
        );
    }
    // Under keys Go's decoder skips, aliases are never expanded: LXD accepts, lxdimg too.
    let mut t = image_start(format!("{META}{laughs}").as_bytes());
    end_marker(&mut t);
    c.case(
        "yaml",
        "alias bomb: 10^12 laughs, unread key",
        &[&t],
        0,
        opts.clone(),
        |r| {
            assert!(lxd(r).is_accepted(), "{:?}", lxd(r));
        },
    );
    // Merged into properties, they are: yaml.v2 stops at its alias limit.
    for (what, bomb) in [
        (
            "merge keys 4^39 in properties",
            format!("{merges}{META}  <<: *m39\n"),
        ),
        (
            "merge keys 4^39 at the top",
            format!("{merges}{META}<<: *m39\n"),
        ),
    ] {
        let mut t = image_start(bomb.as_bytes());
        end_marker(&mut t);
        c.case(
            "yaml",
            format!("alias bomb: {what}"),
            &[&t],
            0,
            opts.clone(),
            |r| {
                let v = lxd(r);
                assert!(v.accepted != Some(true), "{v:?}");
                let why = v.error.as_deref().or(v.reason.as_deref()).unwrap();
                assert!(why.contains("alias") || why.contains("nodes"), "{why}");
            },
        );
    }
}

fn templates(c: &mut Corpus) {
    let n = 20_000;
    let mut yaml = String::from(META);
    yaml += "templates:\n";
    for i in 0..n {
        yaml += &format!("  /t/{i}: {{when: [create], template: {i}.tpl}}\n");
    }
    let mut t = Vec::new();
    member(&mut t, b"metadata.yaml", b'0', yaml.as_bytes());
    member(&mut t, b"templates/", b'5', b"");
    for i in 0..n {
        member(
            &mut t,
            format!("templates/{i}.tpl").as_bytes(),
            b'0',
            b"{{ instance.name }}\n",
        );
    }
    member(&mut t, b"rootfs/", b'5', b"");
    end_marker(&mut t);
    let img = Codec::Gzip.compress(&t);
    c.case(
        "templates",
        "20 000 rules, 20 000 files",
        &[&img],
        32 << 10,
        test_options(false),
        |r| {
            assert!(lxd(r).is_accepted(), "{:?}", lxd(r));
            assert_eq!(r.templates.len(), n);
            assert!(
                !codes(r).contains(&"template-file-missing"),
                "{:?}",
                r.findings
                    .iter()
                    .find(|f| f.code == "template-file-missing")
            );
        },
    );
}

fn zstd_window_2g(c: &mut Corpus) {
    // A frame header declaring a 2 GiB window (window log 31), then a raw block.
    let mut f = vec![0x28, 0xb5, 0x2f, 0xfd];
    f.push(0x00); // no checksum, no dictionary, not single-segment, no content size
    f.push((31 - 10) << 3); // window descriptor: 2^31
    let block = vec![0u8; 1024];
    let bh = (block.len() as u32) << 3 | 1; // last block, raw
    f.extend_from_slice(&bh.to_le_bytes()[..3]);
    f.extend_from_slice(&block);
    c.case(
        "zstd-window",
        "frame declaring a 2 GiB window",
        &[&f],
        0,
        test_options(false),
        |r| {
            let e = finding(r, "decode-error");
            assert_eq!(e.offset, Some(0));
            assert!(
                e.message.contains("memory") || e.message.contains("window"),
                "{}",
                e.message
            );
        },
    );
}

fn truncations(c: &mut Corpus) {
    let opts = test_options(false);
    let t = valid_tar();
    // Inside each codec's header.
    for codec in Codec::ALL {
        let z = codec.compress(&t);
        for cut in [1usize, 3, 7, 11] {
            let img = &z[..cut.min(z.len() - 1)];
            c.case(
                "truncation",
                format!("{} header cut at byte {}", codec.name(), img.len()),
                &[img],
                codec.window(&z),
                opts.clone(),
                |r| {
                    let v = lxd(r);
                    assert!(v.accepted != Some(true), "{v:?}");
                    let cs = codes(r);
                    assert!(
                        cs.contains(&"decode-error") || cs.contains(&"unknown-format"),
                        "{:?}",
                        r.findings
                    );
                    if let Some(f) = r.findings.iter().find(|f| f.code == "decode-error") {
                        assert!(f.offset.is_some(), "{f:?}");
                    }
                },
            );
        }
        // Mid-stream.
        let img = &z[..z.len() / 2];
        c.case(
            "truncation",
            format!("{} stream cut in half", codec.name()),
            &[img],
            codec.window(&z),
            opts.clone(),
            |r| {
                let f = finding(r, "decode-error");
                assert!(f.offset.is_some());
            },
        );
    }
    // Mid tar header and mid member (plain tar: the decoded offset is the file offset).
    let meta_end = 512 + META.len().next_multiple_of(512);
    for (what, cut) in [("mid tar header", meta_end + 100), ("mid member", 300)] {
        let img = &t[..cut];
        c.case(
            "truncation",
            format!("tar {what}"),
            &[img],
            0,
            opts.clone(),
            |r| {
                let f = finding(r, "tar-error");
                assert!(
                    f.message.contains(&format!("offset {cut}")),
                    "{}",
                    f.message
                );
            },
        );
    }
}

fn hostile_text(c: &mut Corpus) {
    let opts = test_options(false);
    let nasty =
        "\u{1b}[31mRED\u{1b}[0m\u{7}<script>alert(1)</script><img src=x onerror=alert(2)>&amp;\"'";
    // In every metadata field and in entry and template names (no '/' in a file name).
    let file = nasty.replace('/', "_");
    let esc = |s: &str| {
        s.replace('\u{1b}', "\\e")
            .replace('\u{7}', "\\a")
            .replace('"', "\\\"")
    };
    let yaml = format!(
        "architecture: x86_64\ncreation_date: 1704067200\nproperties:\n  description: \"{d}\"\n  os: \"{d}\"\n  release: \"{d}\"\n  \"{d}\": \"{d}\"\ntemplates:\n  \"/etc/{d}\":\n    when: [create, \"{d}\"]\n    template: \"{f}.tpl\"\n    properties:\n      \"{d}\": \"{d}\"\n",
        d = esc(nasty),
        f = esc(&file)
    );
    let mut t = Vec::new();
    member(&mut t, b"metadata.yaml", b'0', yaml.as_bytes());
    member(
        &mut t,
        format!("templates/{file}.tpl").as_bytes(),
        b'0',
        nasty.as_bytes(),
    );
    member(&mut t, b"rootfs/", b'5', b"");
    member(&mut t, format!("rootfs/{nasty}").as_bytes(), b'0', b"x");
    member(&mut t, b"rootfs/\xff\xfe\x80bad\x00utf8", b'0', b"x");
    member(&mut t, b"templates/\xc3\x28.tpl", b'0', b"x");
    end_marker(&mut t);
    c.case(
        "text",
        "control characters and markup everywhere",
        &[&t],
        0,
        opts.clone(),
        |r| {
            assert!(lxd(r).is_accepted(), "{:?}", lxd(r));
            let md = r.metadata.as_ref().unwrap();
            assert_eq!(
                md.properties.get("description").map(String::as_str),
                Some(nasty)
            );
            assert!(
                r.templates
                    .iter()
                    .any(|t| t.template == format!("{file}.tpl")
                        && t.present
                        && t.text.as_deref() == Some(nasty)),
                "{:?}",
                r.templates
            );
            assert!(
                codes(r).contains(&"template-trigger-unknown"),
                "{:?}",
                r.findings
            );
        },
    );
    // Invalid UTF-8 in metadata.yaml: Go's YAML decoder refuses it.
    let mut bad = META.as_bytes().to_vec();
    bad.extend_from_slice(b"  serial: \"\xff\xfe\xc3\x28\"\n");
    let mut t = image_start(&bad);
    end_marker(&mut t);
    c.case(
        "text",
        "invalid UTF-8 in metadata.yaml",
        &[&t],
        0,
        opts.clone(),
        |r| {
            assert_eq!(lxd(r).accepted, Some(false), "{:?}", lxd(r));
            assert!(
                lxd(r).error.as_deref().unwrap().contains("yaml"),
                "{:?}",
                lxd(r)
            );
        },
    );
    // A NUL and control characters in the YAML itself.
    let mut t = image_start(format!("{META}  serial: \"a\u{0}b\u{1b}c\"\n").as_bytes());
    end_marker(&mut t);
    c.case("text", "NUL in metadata.yaml", &[&t], 0, opts, |r| {
        assert!(lxd(r).accepted.is_some(), "{:?}", lxd(r));
    });
}

fn split_pairs(c: &mut Corpus) {
    let mut meta = Vec::new();
    member(&mut meta, b"metadata.yaml", b'0', META.as_bytes());
    member(&mut meta, b"templates/", b'5', b"");
    end_marker(&mut meta);
    let meta = Codec::Xz.compress(&meta);
    let mut root = Vec::new();
    member(&mut root, b"etc/", b'5', b"");
    member(&mut root, b"etc/hostname", b'0', b"x\n");
    end_marker(&mut root);
    let root = Codec::Gzip.compress(&root);
    let opts = || {
        let mut o = test_options(true);
        o.split_type = Some(lxdimg::ImageType::Container);
        o
    };
    c.case(
        "split",
        "rootfs first, metadata second",
        &[&root, &meta],
        256 << 10,
        opts(),
        |r| {
            let f = finding(r, "split-files-swapped");
            assert!(f.message.contains("lxc image import"), "{}", f.message);
            assert!(!lxd(r).is_accepted());
        },
    );
    c.case(
        "split",
        "metadata tarball twice",
        &[&meta, &meta],
        256 << 10,
        opts(),
        |r| {
            let f = finding(r, "split-metadata-twice");
            assert!(f.file.is_some() && f.offset == Some(0), "{f:?}");
        },
    );
    c.case(
        "split",
        "rootfs tarball twice",
        &[&root, &root],
        32 << 10,
        opts(),
        |r| {
            assert!(!lxd(r).is_accepted());
            assert!(
                lxd(r).error.as_deref() == Some("Metadata tarball is missing metadata.yaml"),
                "{:?}",
                lxd(r)
            );
        },
    );
}

#[test]
fn hostile_corpus() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Corpus::default();
    bombs(&mut c);
    many_entries(&mut c);
    pax_cases(&mut c);
    long_names(&mut c);
    yaml_cases(&mut c);
    templates(&mut c);
    zstd_window_2g(&mut c);
    truncations(&mut c);
    hostile_text(&mut c);
    split_pairs(&mut c);
    c.print();
}

/// The limits are checked at aligned pieces: a bomb's report does not depend on the chunking.
#[test]
fn bomb_reports_do_not_depend_on_chunking() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut o = test_options(false);
    o.max_decoded_bytes = 8 << 20;
    for codec in [Codec::Gzip, Codec::Xz, Codec::Zstd, Codec::Bzip2] {
        for metadata_first in [true, false] {
            let img = bomb(codec, 4 << 20, 32 << 20, metadata_first);
            let whole = inspect_opts(&[&img], o.clone(), || usize::MAX);
            assert!(codes(&whole).contains(&"decompression-bomb"), "{codec:?}");
            for seed in 1..4 {
                let r = inspect_opts(&[&img], o.clone(), random_plan(seed));
                assert_eq!(
                    serde_json::to_value(&r).unwrap(),
                    serde_json::to_value(&whole).unwrap(),
                    "{codec:?}, seed {seed}"
                );
            }
            let r = inspect_opts(&[&img], o.clone(), || 1 << 16);
            assert_eq!(
                serde_json::to_value(&r).unwrap(),
                serde_json::to_value(&whole).unwrap()
            );
        }
    }
}
