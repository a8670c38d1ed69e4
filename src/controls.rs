//! Control characters in untrusted text (metadata, property keys and values, template names,
//! entry and file names): which characters they are, and how they are shown.
//!
//! One definition for every output: the CLI prints untrusted strings through [`escape`], the page
//! builds its pattern from [`CONTROLS`] (`controlCharacters()` in the wasm bindings) and writes the
//! same `\u{1b}` forms, and the `control-characters` finding flags metadata holding them.
//!
//! The set: C0 (U+0000–U+001F), DEL, C1 (U+0080–U+009F) — what a terminal acts on (ESC starts
//! escape sequences, CSI U+009B is one on its own, BEL rings, CR and BS rewrite the line) — and
//! the bidirectional formatting characters, which reorder how a line is displayed ("Trojan
//! Source"). Every other character, all printable Unicode included, is kept as is.

use std::borrow::Cow;

/// The control characters, as inclusive ranges.
pub const CONTROLS: &[(char, char)] = &[
    ('\u{0}', '\u{1f}'),
    ('\u{7f}', '\u{9f}'),
    // ARABIC LETTER MARK, LEFT-TO-RIGHT MARK, RIGHT-TO-LEFT MARK.
    ('\u{61c}', '\u{61c}'),
    ('\u{200e}', '\u{200f}'),
    // LRE, RLE, PDF, LRO, RLO.
    ('\u{202a}', '\u{202e}'),
    // LRI, RLI, FSI, PDI.
    ('\u{2066}', '\u{2069}'),
];

/// Whether `c` is one of [`CONTROLS`].
pub fn is_control(c: char) -> bool {
    CONTROLS.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// How a control character is shown: `\t`, `\n`, `\r`, `\0`, else `\u{hex}` (as Rust's
/// `char::escape_debug` writes them; ESC is `\u{1b}`, BEL `\u{7}`).
pub fn escaped(c: char) -> String {
    match c {
        '\t' => "\\t".into(),
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\0' => "\\0".into(),
        c => c.escape_unicode().to_string(),
    }
}

/// `s` with every control character replaced by its [`escaped`] form; borrowed when there is none.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_control(c) {
            out.push_str(&escaped(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The distinct control characters of `s` in the order they first occur, [`escaped`], at most
/// `max` of them (for messages that name them).
pub fn distinct(s: &str, max: usize) -> Vec<String> {
    let mut seen: Vec<char> = Vec::new();
    for c in s.chars().filter(|&c| is_control(c)) {
        if !seen.contains(&c) {
            if seen.len() == max {
                break;
            }
            seen.push(c);
        }
    }
    seen.into_iter().map(escaped).collect()
}

/// The set as the body of a JavaScript regular-expression character class (`\u0000-\u001f…`),
/// for the page.
pub fn js_class() -> String {
    let u = |c: char| format!("\\u{{{:x}}}", c as u32);
    CONTROLS
        .iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                u(lo)
            } else {
                format!("{}-{}", u(lo), u(hi))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_only() {
        assert_eq!(escape("plain — ünïcødé ✓"), "plain — ünïcødé ✓");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\u{1b}[31mred\u{7}\tb\n\r\0\u{7f}\u{9b}\u{202e}z"),
            "a\\u{1b}[31mred\\u{7}\\tb\\n\\r\\0\\u{7f}\\u{9b}\\u{202e}z"
        );
        // Each escaped form is what Rust's Debug writes for the character.
        for &(lo, hi) in CONTROLS {
            for c in lo..=hi {
                let debug = format!("{c:?}");
                assert_eq!(format!("'{}'", escaped(c)), debug, "{c:?}");
                assert!(!escaped(c).chars().any(is_control));
            }
        }
        assert!(!is_control(' ') && !is_control('\u{a0}') && !is_control('\u{200d}'));
    }

    #[test]
    fn distinct_in_order() {
        assert_eq!(
            distinct("\u{7}x\u{1b}\u{7}\u{1b}", 8),
            ["\\u{7}", "\\u{1b}"]
        );
        assert_eq!(distinct("\u{1}\u{2}\u{3}", 2), ["\\u{1}", "\\u{2}"]);
        assert!(distinct("none", 8).is_empty());
    }

    #[test]
    fn js_class_covers_the_set() {
        assert_eq!(
            js_class(),
            "\\u{0}-\\u{1f}\\u{7f}-\\u{9f}\\u{61c}\\u{200e}-\\u{200f}\\u{202a}-\\u{202e}\\u{2066}-\\u{2069}"
        );
    }
}
