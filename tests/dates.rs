//! Issue 8, class 4: dates LXD writes to its database but cannot read back make `lxc image
//! import` fail (with the fingerprint and the date as the database holds it), on both sides of
//! every boundary, for creation and expiry dates, in every target.

mod common;
use common::*;

fn image(creation: &str, expiry: &str) -> Vec<u8> {
    let meta = format!(
        "architecture: x86_64\ncreation_date: {creation}\nexpiry_date: {expiry}\nproperties:\n  description: d\n  os: debian\n  release: bookworm\n"
    );
    gzip(&tar(
        &[
            Member::File("metadata.yaml", meta.as_bytes()),
            Member::Dir("rootfs"),
        ],
        TarFlavor::Gnu,
    ))
}

#[test]
fn dates_on_both_sides_of_every_boundary() {
    let ok = |v: i64| (-62_167_219_200..=253_402_300_799).contains(&v);
    let values: [i64; 10] = [
        1,
        1_700_000_000,
        253_402_300_799,
        253_402_300_800,
        253_402_300_801,
        i64::MAX,
        -62_167_219_200,
        -62_167_219_201,
        -1,
        i64::MIN,
    ];
    let mut cases = 0;
    for field in ["creation", "expiry"] {
        for v in values {
            let (c, e) = if field == "creation" {
                (v.to_string(), "0".to_string())
            } else {
                ("1700000000".to_string(), v.to_string())
            };
            let img = image(&c, &e);
            let r = inspect(&[&img]);
            let fp = r.fingerprint.clone().unwrap();
            for (key, verdict) in r.verdicts.iter() {
                if ok(v) {
                    assert!(verdict.is_accepted(), "{field} {v} {key}: {verdict:?}");
                } else {
                    let e = verdict.error.as_deref().unwrap_or("");
                    assert_eq!(verdict.accepted, Some(false), "{field} {v} {key}");
                    assert!(
                        e.starts_with(&format!("Fetch image \"{fp}\": Failed to fetch images: Failed to fetch images: parsing time ")),
                        "{field} {v} {key}: {e}"
                    );
                }
            }
            let finding = r.findings.iter().any(|f| f.code == "date-out-of-range");
            // The finding explains the poisoned row (and flags pre-1970 dates as well).
            assert_eq!(finding, v > 253_402_300_799 || v < 1, "{field} {v}");
            cases += 1;
        }
    }
    let r = inspect(&[&image("253402300800", "0")]);
    assert_eq!(
        r.verdicts["lxd-5.0"].error.as_deref().unwrap(),
        format!("Fetch image \"{}\": Failed to fetch images: Failed to fetch images: parsing time \"10000-01-01 00:00:00+00:00\" as \"2006-01-02\": cannot parse \"0-01-01 00:00:00+00:00\" as \"-\"", r.fingerprint.as_deref().unwrap())
    );
    println!("dates: {cases} cases");
}
