//! libyaml's reader as yaml.v2 ports it (`readerc.go`: `yaml_parser_determine_encoding`,
//! `yaml_parser_update_raw_buffer`, `yaml_parser_update_buffer`); yaml v4 keeps it
//! (`internal/libyaml/reader.go`) except for the character set.
//!
//! - The encoding comes from the first bytes only: `FF FE` is UTF-16LE, `FE FF` UTF-16BE (checked
//!   first, so a UTF-32LE BOM reads as UTF-16LE), `EF BB BF` UTF-8; the BOM is consumed. Anything
//!   else is UTF-8, so UTF-16 without a BOM fails as UTF-8 would.
//! - Characters are decoded one by one, each checked as it comes, in this order: the sequence
//!   itself (the six problems below), then the allowed character set ("control characters are
//!   not allowed"). The first problem stops the reader.
//! - The reader is lazy: it asks its `io.Reader` for at most 512 bytes (`input_raw_buffer_size`),
//!   decodes all the complete characters of that buffer, and reads again only when the scanner
//!   needs a character it does not have yet; an incomplete character at the end of a buffer is
//!   moved to the start of the next one. A problem in a part of the file the scanner never asks
//!   for is never seen.
//!
//! A reader error reaches the caller as `yaml: <problem>`: yaml.v2's `parser.fail` prefixes a
//! line only from `problem_mark`/`context_mark`, which the reader never sets (its offset and value
//! are not shown). Real LXD 5.0.2 on a Latin-1 `é` before the final newline:
//! `yaml: incomplete UTF-8 octet sequence`.

use super::Dialect;

/// libyaml's `input_raw_buffer_size`: the most bytes one read asks for.
const RAW_BUFFER: usize = 512;

/// The encoding libyaml settles on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
}

/// libyaml's reader error: `problem` and `problem_offset` (bytes from the start of the input,
/// the BOM included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ReaderError {
    pub(super) problem: &'static str,
    pub(super) offset: usize,
}

impl ReaderError {
    /// The error text yaml.v2 returns.
    pub(super) fn message(&self) -> String {
        format!("yaml: {}", self.problem)
    }
}

/// What the reader makes of the input.
#[derive(Debug)]
pub(super) struct Decoded {
    /// The characters before the first problem (all of them without one), BOM removed.
    pub(super) text: String,
    pub(super) error: Option<ReaderError>,
    /// With an error: how many characters the reader had decoded before the read that holds
    /// the error. The error is seen only once the scanner asks for a character at this index
    /// or later. Without an error: the number of characters.
    pub(super) reached_at: usize,
}

/// Detects the encoding from the first bytes (`yaml_parser_determine_encoding`); returns it and
/// the BOM's length.
pub(super) fn detect(head: &[u8]) -> (Encoding, usize) {
    if head.starts_with(b"\xff\xfe") {
        (Encoding::Utf16Le, 2)
    } else if head.starts_with(b"\xfe\xff") {
        (Encoding::Utf16Be, 2)
    } else if head.starts_with(b"\xef\xbb\xbf") {
        (Encoding::Utf8, 3)
    } else {
        (Encoding::Utf8, 0)
    }
}

/// The characters the reader lets through (`yaml_parser_update_buffer`'s last check). yaml v4
/// (go-yaml PR #189, in the rc.6 that Incus 7 uses) also allows DEL and the C1 block.
fn allowed(value: u32, dialect: Dialect) -> bool {
    matches!(value, 0x09 | 0x0a | 0x0d | 0x20..=0x7e | 0x85 | 0xa0..=0xd7ff | 0xe000..=0xfffd | 0x10000..=0x10ffff)
        || (dialect == Dialect::V4 && (0x7f..=0x9f).contains(&value))
}

enum Step {
    Char(u32, usize),
    /// The buffer ends inside a character; read more.
    Incomplete,
    Error(&'static str, usize),
}

/// Decodes the character at the start of `buf` (the rest of the raw buffer); `eof` says the
/// buffer reaches the end of the input. Offsets in errors are relative to the start of `buf`.
fn step(buf: &[u8], encoding: Encoding, eof: bool) -> Step {
    match encoding {
        Encoding::Utf8 => {
            let lead = buf[0];
            let (width, bits) = match lead {
                _ if lead & 0x80 == 0x00 => (1, u32::from(lead & 0x7f)),
                _ if lead & 0xe0 == 0xc0 => (2, u32::from(lead & 0x1f)),
                _ if lead & 0xf0 == 0xe0 => (3, u32::from(lead & 0x0f)),
                _ if lead & 0xf8 == 0xf0 => (4, u32::from(lead & 0x07)),
                _ => return Step::Error("invalid leading UTF-8 octet", 0),
            };
            if width > buf.len() {
                return if eof {
                    Step::Error("incomplete UTF-8 octet sequence", 0)
                } else {
                    Step::Incomplete
                };
            }
            let mut value = bits;
            for (k, &octet) in buf.iter().enumerate().take(width).skip(1) {
                if octet & 0xc0 != 0x80 {
                    return Step::Error("invalid trailing UTF-8 octet", k);
                }
                value = (value << 6) + u32::from(octet & 0x3f);
            }
            let shortest = match width {
                1 => true,
                2 => value >= 0x80,
                3 => value >= 0x800,
                _ => value >= 0x10000,
            };
            if !shortest {
                return Step::Error("invalid length of a UTF-8 sequence", 0);
            }
            if (0xd800..=0xdfff).contains(&value) || value > 0x10ffff {
                return Step::Error("invalid Unicode character", 0);
            }
            Step::Char(value, width)
        }
        Encoding::Utf16Le | Encoding::Utf16Be => {
            let unit = |i: usize| {
                let pair = [buf[i], buf[i + 1]];
                u32::from(if encoding == Encoding::Utf16Le {
                    u16::from_le_bytes(pair)
                } else {
                    u16::from_be_bytes(pair)
                })
            };
            if buf.len() < 2 {
                return if eof {
                    Step::Error("incomplete UTF-16 character", 0)
                } else {
                    Step::Incomplete
                };
            }
            let value = unit(0);
            if value & 0xfc00 == 0xdc00 {
                return Step::Error("unexpected low surrogate area", 0);
            }
            if value & 0xfc00 != 0xd800 {
                return Step::Char(value, 2);
            }
            if buf.len() < 4 {
                return if eof {
                    Step::Error("incomplete UTF-16 surrogate pair", 0)
                } else {
                    Step::Incomplete
                };
            }
            let low = unit(2);
            if low & 0xfc00 != 0xdc00 {
                return Step::Error("expected low surrogate area", 2);
            }
            Step::Char(0x10000 + ((value & 0x3ff) << 10) + (low & 0x3ff), 4)
        }
    }
}

/// Runs the reader over the whole input, as if every read returned all the bytes asked for
/// (what `archive/tar` does for an entry whose bytes are at hand; the last read returns the
/// final bytes together with `io.EOF`).
pub(super) fn read(input: &[u8], dialect: Dialect) -> Decoded {
    let n = input.len();
    // The first read happens while detecting the encoding; the BOM is consumed from it.
    let mut end = n.min(RAW_BUFFER);
    let (encoding, mut pos) = detect(&input[..end]);
    let mut text = String::with_capacity(match encoding {
        Encoding::Utf8 => n,
        _ => n / 2 * 3,
    });
    let mut chars = 0usize;
    let mut before_read = 0usize;
    loop {
        let eof = end == n;
        while pos < end {
            let problem = match step(&input[pos..end], encoding, eof) {
                Step::Incomplete => break,
                Step::Error(problem, at) => Some((problem, pos + at)),
                Step::Char(value, _) if !allowed(value, dialect) => {
                    Some(("control characters are not allowed", pos))
                }
                Step::Char(value, width) => {
                    // `allowed` excludes surrogates and values above 0x10FFFF.
                    text.push(char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER));
                    chars += 1;
                    pos += width;
                    None
                }
            };
            if let Some((problem, offset)) = problem {
                return Decoded {
                    text,
                    error: Some(ReaderError { problem, offset }),
                    reached_at: before_read,
                };
            }
        }
        if eof {
            return Decoded {
                text,
                error: None,
                reached_at: chars,
            };
        }
        // The next read: what is left of an incomplete character, then up to 512 bytes.
        before_read = chars;
        end = (pos + RAW_BUFFER).min(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &[u8]) -> (&'static str, usize) {
        let e = read(input, Dialect::V2).error.expect("a reader error");
        (e.problem, e.offset)
    }

    #[test]
    fn detection() {
        assert_eq!(detect(b"\xff\xfea\x00"), (Encoding::Utf16Le, 2));
        assert_eq!(detect(b"\xfe\xff\x00a"), (Encoding::Utf16Be, 2));
        assert_eq!(detect(b"\xef\xbb\xbfa"), (Encoding::Utf8, 3));
        assert_eq!(detect(b"\xef\xbb"), (Encoding::Utf8, 0));
        assert_eq!(detect(b"\xff\xfe\x00\x00"), (Encoding::Utf16Le, 2));
        assert_eq!(detect(b""), (Encoding::Utf8, 0));
        let d = read(b"\xfe\xff\x00a\xd8\x3d\xde\x00", Dialect::V2);
        assert_eq!((d.text.as_str(), d.error), ("a\u{1f600}", None));
    }

    #[test]
    fn utf8_problems_and_offsets() {
        assert_eq!(err(b"a: \xff"), ("invalid leading UTF-8 octet", 3));
        assert_eq!(err(b"a: \x80"), ("invalid leading UTF-8 octet", 3));
        assert_eq!(err(b"a: \xc3("), ("invalid trailing UTF-8 octet", 4));
        assert_eq!(err(b"a: \xe4\xb8"), ("incomplete UTF-8 octet sequence", 3));
        assert_eq!(err(b"a: caf\xe9\n"), ("incomplete UTF-8 octet sequence", 6));
        assert_eq!(
            err(b"a: \xc0\xaf"),
            ("invalid length of a UTF-8 sequence", 3)
        );
        assert_eq!(err(b"a: \xed\xa0\x80"), ("invalid Unicode character", 3));
        assert_eq!(
            err(b"a: \xf4\x90\x80\x80"),
            ("invalid Unicode character", 3)
        );
        assert_eq!(
            err(b"\xef\xbb\xbfa\x01"),
            ("control characters are not allowed", 4)
        );
        // The first problem in the stream wins.
        assert_eq!(err(b"a\x01\xff"), ("control characters are not allowed", 1));
    }

    #[test]
    fn utf16_problems_and_offsets() {
        assert_eq!(
            err(b"\xff\xfea\x00\x00\xdc"),
            ("unexpected low surrogate area", 4)
        );
        assert_eq!(
            err(b"\xff\xfe\x00\xd8a\x00"),
            ("expected low surrogate area", 4)
        );
        assert_eq!(
            err(b"\xfe\xff\xd8\x00"),
            ("incomplete UTF-16 surrogate pair", 2)
        );
        assert_eq!(
            err(b"\xfe\xff\xd8\x00\xdc"),
            ("incomplete UTF-16 surrogate pair", 2)
        );
        assert_eq!(
            err(b"\xfe\xff\x00a\x00"),
            ("incomplete UTF-16 character", 4)
        );
        assert_eq!(
            err(b"\xff\xfe\x00\x00"),
            ("control characters are not allowed", 2)
        );
    }

    #[test]
    fn reads_are_lazy_in_512_byte_pieces() {
        // A bad byte in the second read: the reader has 512 characters before it.
        let mut input = vec![b'a'; 700];
        input[600] = 0xff;
        let d = read(&input, Dialect::V2);
        assert_eq!((d.reached_at, d.text.len()), (512, 600));
        // A character cut by the end of a read is decoded by the next one.
        let mut input = vec![b'a'; 511];
        input.extend_from_slice("é".as_bytes());
        input.extend_from_slice(&[b'b'; 600]);
        input.push(0x01);
        let d = read(&input, Dialect::V2);
        assert_eq!(d.reached_at, 511 + 1 + 510);
        // UTF-16: the BOM is in the first read.
        let mut input = b"\xff\xfe".to_vec();
        for _ in 0..400 {
            input.extend_from_slice(b"a\x00");
        }
        input.extend_from_slice(b"\x00\xdc");
        assert_eq!(read(&input, Dialect::V2).reached_at, 255);
    }

    #[test]
    fn v4_allows_c1() {
        assert!(read("a: \u{85}\u{80}\u{9f}\x7f".as_bytes(), Dialect::V4)
            .error
            .is_none());
        assert_eq!(
            read("a: \u{80}".as_bytes(), Dialect::V2)
                .error
                .unwrap()
                .problem,
            "control characters are not allowed"
        );
        assert!(read(b"a: \x01", Dialect::V4).error.is_some());
    }
}
