//! Unit tests of the tree's pieces (the CLI-level tests are tests/stream_tree.rs).

use super::*;

#[test]
fn rfc2822_from_version() {
    assert_eq!(
        version_to_rfc2822("20240101_0000").as_deref(),
        Some("Mon, 01 Jan 2024 00:00:00 +0000")
    );
    assert_eq!(
        version_to_rfc2822("20261206_0130").as_deref(),
        Some("Sun, 06 Dec 2026 01:30:00 +0000")
    );
    assert_eq!(version_to_rfc2822("2024"), None);
}

#[test]
fn atomic_write_replaces_whole_file() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.json");
    write_atomic(&p, b"one").unwrap();
    write_atomic(&p, b"two two").unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"two two");
    let names: Vec<_> = fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
}

#[test]
fn html_escapes_markup_and_controls() {
    assert_eq!(
        html::html("<b a=\"1\">&\u{1b}"),
        "&lt;b a=&quot;1&quot;&gt;&amp;\\u{1b}"
    );
}
