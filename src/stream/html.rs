//! The tree's `index.html` and the index's `updated` date.

use super::union_view;
use lxdimg::simplestreams::{self as ss, Client, Products};
use std::collections::BTreeSet;

/// `Mon, 01 Jan 2024 00:00:00 +0000` from a `YYYYMMDD_hhmm` version name.
pub(super) fn version_to_rfc2822(v: &str) -> Option<String> {
    if !ss::is_full_version_name(v) {
        return None;
    }
    let (y, m, d): (i64, usize, u32) = (
        v[0..4].parse().ok()?,
        v[4..6].parse().ok()?,
        v[6..8].parse().ok()?,
    );
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // Zeller-style weekday via days since epoch.
    let days = days_from_civil(y, m as u32, d);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    Some(format!(
        "{wd}, {d:02} {} {y:04} {}:{}:00 +0000",
        months[m - 1],
        &v[9..11],
        &v[11..13]
    ))
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(super) fn html(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() => o.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

/// The tree's landing page: the images and the commands that use them.
pub(super) fn index_html(products: &Products, url: Option<&str>) -> String {
    let base = url.unwrap_or("https://HOST/PATH");
    let mut rows = String::new();
    let lxd: BTreeSet<String> = ss::client_view(products, Client::Lxd)
        .into_iter()
        .map(|s| s.fingerprint)
        .collect();
    let incus: BTreeSet<String> = ss::client_view(products, Client::Incus)
        .into_iter()
        .map(|s| s.fingerprint)
        .collect();
    for s in union_view(products) {
        let clients = [
            ("LXD", lxd.contains(&s.fingerprint)),
            ("Incus", incus.contains(&s.fingerprint)),
        ]
        .iter()
        .filter(|c| c.1)
        .map(|c| c.0)
        .collect::<Vec<_>>()
        .join(", ");
        let p = &products.products[&s.product];
        rows.push_str(&format!(
            "<tr><td>{}</td><td><code>{}</code></td><td>{} {} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            html(&s.aliases.join(", ")),
            html(&s.fingerprint[..s.fingerprint.len().min(12)]),
            html(&p.os),
            html(&p.release),
            html(p.variant.as_deref().unwrap_or("")),
            html(&s.architecture),
            html(s.image_type.as_str()),
            html(&s.version),
            html(&clients),
        ));
    }
    let alias = union_view(products)
        .into_iter()
        .find_map(|s| s.aliases.first().cloned())
        .unwrap_or_else(|| "ALIAS".into());
    let note = if url.is_none() {
        "<p>Replace <code>https://HOST/PATH</code> with the address this directory is served at (<code>lxdimg stream init DIR --url URL</code> writes it here).</p>\n"
    } else {
        ""
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Images</title>\n<meta name=\"generator\" content=\"lxdimg stream\"></head>\n<body>\n<h1>LXD and Incus images</h1>\n{note}<pre>lxc remote add images {b} --protocol simplestreams --public\nlxc launch images:{a} my-instance\n\nincus remote add images {b} --protocol simplestreams --public\nincus launch images:{a} my-instance</pre>\n<table>\n<tr><th>Aliases</th><th>Fingerprint</th><th>OS</th><th>Architecture</th><th>Type</th><th>Version</th><th>Clients</th></tr>\n{rows}</table>\n</body></html>\n",
        b = html(base),
        a = html(&alias),
    )
}
