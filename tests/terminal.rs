//! Terminal safety of the CLI: an image whose metadata, template names, entry names and file name
//! carry escape sequences must not reach the terminal raw through `lxdimg inspect` (they are
//! printed as `\u{1b}`-style escapes), and `--json` keeps every string exactly.

mod common;

use common::{tar, Member, TarFlavor};
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_lxdimg");

/// `metadata.yaml` whose strings hold ESC (`\e`), BEL (`\a`), a C1 CSI (U+009B) and a
/// right-to-left override, through YAML's double-quoted escapes (raw control characters are a
/// YAML error, so this is how an image carries them).
const META: &str = r#"architecture: amd64
creation_date: 1458040200
properties:
  description: "Debian \e[31mRED\e[0m \a bell\e]0;pwned\a"
  os: debian
  release: bookworm
  "\e[2Jkey": "value\x9b1A"
  serial: "2024\u202Eevil"
templates:
  "/etc/\e[1mhostname":
    when: [create]
    template: hostname.tpl
"#;

/// What the description decodes to.
const DESCRIPTION: &str = "Debian \u{1b}[31mRED\u{1b}[0m \u{7} bell\u{1b}]0;pwned\u{7}";

/// Control characters the terminal would act on, none of which may be printed raw.
const RAW: [char; 4] = ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'];

fn image(dir: &Path, name: &str) -> std::path::PathBuf {
    let data = tar(
        &[
            Member::File("metadata.yaml", META.as_bytes()),
            Member::Dir("templates"),
            Member::File("templates/hostname.tpl", b"{{ container.name }}\n"),
            // An unused template whose entry name carries an escape sequence: quoted by a finding.
            Member::File("templates/\u{1b}[5mblink.tpl", b"x\n"),
            Member::Dir("rootfs"),
            Member::Dir("rootfs/etc"),
            Member::File("rootfs/etc/hostname", b"debian\n"),
        ],
        TarFlavor::Gnu,
    );
    let path = dir.join(name);
    std::fs::write(&path, common::gzip(&data)).unwrap();
    path
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn assert_no_raw(what: &str, bytes: &[u8]) -> String {
    let text =
        String::from_utf8(bytes.to_vec()).unwrap_or_else(|e| panic!("{what} is not UTF-8: {e}"));
    for c in RAW {
        assert!(
            !text.contains(c),
            "{what} holds a raw {c:?}:\n{}",
            text.escape_debug()
        );
    }
    text
}

#[test]
fn inspect_escapes_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let name = "evil\u{1b}]0;title\u{7}.tar.gz";
    let file = image(dir.path(), name);
    let out = run(&["inspect".as_ref(), file.as_os_str()]);
    let stdout = assert_no_raw("stdout", &out.stdout);
    let stderr = assert_no_raw("stderr", &out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    for want in [
        // properties, keys and values
        r"    description: Debian \u{1b}[31mRED\u{1b}[0m \u{7} bell\u{1b}]0;pwned\u{7}",
        r"    \u{1b}[2Jkey: value\u{9b}1A",
        r"    serial: 2024\u{202e}evil",
        // the templates table
        r"    /etc/\u{1b}[1mhostname  create ",
        // findings quoting image data: the new code, and an entry name
        r#"warning control-characters: properties.description holds control characters (\u{1b} \u{7}); `lxc image list` and `lxc image info` on an LXD host print it raw"#,
        r#"warning control-characters: property key "\u{1b}[2Jkey" holds control characters (\u{1b})"#,
        r#"warning control-characters: properties.serial holds control characters (\u{202e})"#,
        r#"warning control-characters: template path "/etc/\u{1b}[1mhostname" holds control characters (\u{1b})"#,
        r"info    template-file-unused: templates/\u{1b}[5mblink.tpl is not used",
        // the verdict still reads as it should
        "will import this image and `lxc init` will create an instance from it",
        // the file name, quoted for bash so that pasting it names the same file
        r"    lxc image import $'",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    // The command names the same file when bash reads it.
    let cmd = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("lxc image import "))
        .unwrap()
        .trim_end_matches(" --alias NAME");
    let echoed = Command::new("bash")
        .args(["-c", &format!("printf %s {cmd}")])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(echoed.stdout).unwrap(),
        file.display().to_string()
    );
}

#[test]
fn json_keeps_every_string_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let file = image(dir.path(), "image.tar.gz");
    let out = run(&["inspect".as_ref(), "--json".as_ref(), file.as_os_str()]);
    assert_eq!(out.status.code(), Some(0));
    // JSON escapes C0 controls itself (`\u001b`); C1 and bidi characters are valid JSON as they
    // are, and --json stays exactly the Report.
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(['\u{1b}', '\u{7}']));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let props = &v["metadata"]["properties"];
    assert_eq!(props["description"], DESCRIPTION);
    assert_eq!(props["\u{1b}[2Jkey"], "value\u{9b}1A");
    assert_eq!(props["serial"], "2024\u{202e}evil");
    assert_eq!(v["templates"][0]["path"], "/etc/\u{1b}[1mhostname");
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "control-characters")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 5, "{codes:#?}");
    assert!(text.contains(
        r#""description": "Debian \u001b[31mRED\u001b[0m \u0007 bell\u001b]0;pwned\u0007""#
    ));
    // Exactly the library's report, byte for byte: --json escapes nothing of its own.
    let mut insp = lxdimg::Inspector::new(lxdimg::Options {
        now: None,
        names: [Some("image.tar.gz".into()), None],
        split_type: None,
        host_arch: v["verdicts"]["lxd-5.0"]["creatable"]["ok"]
            .as_bool()
            .and(Some("x86_64".to_string())),
        ..lxdimg::Options::default()
    });
    insp.push(&std::fs::read(&file).unwrap());
    let lib = serde_json::to_string_pretty(&insp.finish()).unwrap() + "\n";
    assert_eq!(lib, text);
}

#[test]
fn errors_naming_a_file_are_escaped() {
    let out = run(&["inspect".as_ref(), "missing\u{1b}[31m.tar".as_ref()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = assert_no_raw("stderr", &out.stderr);
    assert!(stderr.contains(r"missing\u{1b}[31m.tar"), "{stderr}");
}

#[test]
fn a_clean_image_has_no_control_finding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clean.tar");
    std::fs::write(
        &path,
        common::unified_tar(TarFlavor::Gnu, common::METADATA, false),
    )
    .unwrap();
    let out = run(&["inspect".as_ref(), "--json".as_ref(), path.as_os_str()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("control-characters"), "{text}");
}
