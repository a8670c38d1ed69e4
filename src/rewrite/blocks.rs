//! Tar blocks the rewriter writes itself: a replaced member's headers, and new members.
//!
//! Untouched members are never re-serialised (their raw blocks are copied); only the headers of a
//! replaced member are patched (size and checksum; name, mode, owner, mtime kept) and headers of
//! added members built.

use super::RewriteError;

fn pad_of(n: usize) -> usize {
    (512 - n % 512) % 512
}

/// Appends `data` and its zero padding to a 512-byte boundary.
pub(super) fn padded(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    out.resize(out.len() + pad_of(data.len()), 0);
}

fn header_size(block: &[u8]) -> Option<u64> {
    tar::Header::from_byte_slice(block).entry_size().ok()
}

/// Sets a header's size field and checksum (a GNU/ustar/V7 header alike: octal fields).
fn patch_size(block: &mut [u8; 512], size: u64) {
    let mut h = tar::Header::new_old();
    h.as_mut_bytes().copy_from_slice(block);
    h.set_size(size);
    h.set_cksum();
    block.copy_from_slice(h.as_bytes());
}

/// A PAX record block without its `size` records (the member's size is in its header again).
fn pax_without_size(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while !rest.is_empty() {
        let len = rest
            .iter()
            .position(|&b| b == b' ')
            .and_then(|sp| std::str::from_utf8(&rest[..sp]).ok())
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&l| l > 0 && l <= rest.len());
        let Some(len) = len else {
            // The walk already refused malformed records; keep whatever is left as it is.
            out.extend_from_slice(rest);
            break;
        };
        let rec = &rest[..len];
        let key = rec
            .iter()
            .position(|&b| b == b' ')
            .map(|sp| &rec[sp + 1..])
            .and_then(|kv| kv.iter().position(|&b| b == b'=').map(|eq| &kv[..eq]));
        if key != Some(b"size") {
            out.extend_from_slice(rec);
        }
        rest = &rest[len..];
    }
    out
}

/// One PAX record, `"%d %s=%s\n"` with the length counting itself.
pub(super) fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} ").into_bytes();
    r.extend_from_slice(key);
    r.push(b'=');
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// The blocks of a member's header group (its GNU `L`/`K` and PAX `x`/`g` headers, then its own
/// header), as held by the rewriter: each header with its data.
struct Part<'a> {
    block: [u8; 512],
    data: &'a [u8],
    /// Data and padding, as in the archive.
    raw: &'a [u8],
}

fn parts(held: &[u8]) -> Result<Vec<Part<'_>>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < held.len() {
        let block: [u8; 512] = held
            .get(at..at + 512)
            .and_then(|b| b.try_into().ok())
            .ok_or("a header block cut short")?;
        at += 512;
        let kind = block[156];
        let len = if matches!(kind, b'L' | b'K' | b'x' | b'g') {
            usize::try_from(header_size(&block).ok_or("unreadable size field")?)
                .map_err(|_| "extended header too large")?
        } else {
            0
        };
        let end = at + len + pad_of(len);
        let raw = held.get(at..end).ok_or("an extended header cut short")?;
        out.push(Part {
            block,
            data: &raw[..len],
            raw,
        });
        at = end;
    }
    Ok(out)
}

/// The PAX global headers of a dropped member's group (they apply to the members after it).
pub(super) fn globals_only(held: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    for p in parts(held)? {
        if p.block[156] == b'g' {
            out.extend_from_slice(&p.block);
            out.extend_from_slice(p.raw);
        }
    }
    Ok(())
}

/// A replaced member's header group: GNU long names and PAX global headers kept as they are, PAX
/// `size` records taken out, and the member's header given the new size and checksum.
pub(super) fn replaced_group(held: &[u8], size: u64, out: &mut Vec<u8>) -> Result<(), String> {
    let parts = parts(held)?;
    let Some((last, metas)) = parts.split_last() else {
        return Err("no header".into());
    };
    for p in metas {
        if p.block[156] == b'x' {
            let data = pax_without_size(p.data);
            if data.is_empty() {
                continue;
            }
            let mut block = p.block;
            patch_size(&mut block, data.len() as u64);
            out.extend_from_slice(&block);
            padded(out, &data);
        } else {
            out.extend_from_slice(&p.block);
            out.extend_from_slice(p.raw);
        }
    }
    let mut block = last.block;
    patch_size(&mut block, size);
    out.extend_from_slice(&block);
    Ok(())
}

/// What a new member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewKind {
    File,
    Directory,
}

/// Headers (and data) of a new member: a ustar header, with a PAX `path` record before it when
/// the name does not fit the ustar name and prefix fields.
pub(super) fn new_member(
    name: &[u8],
    kind: NewKind,
    mode: u32,
    mtime: u64,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), RewriteError> {
    let bad = |what: &str| {
        RewriteError::new(
            None,
            format!(
                "cannot add \"{}\": {what}",
                String::from_utf8_lossy(name).escape_debug()
            ),
        )
    };
    if name.is_empty() || name.contains(&0) {
        return Err(bad("empty name or NUL byte in the name"));
    }
    let size = if kind == NewKind::File {
        data.len() as u64
    } else {
        0
    };
    let mut h = tar::Header::new_ustar();
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_size(size);
    h.set_entry_type(match kind {
        NewKind::File => tar::EntryType::Regular,
        NewKind::Directory => tar::EntryType::Directory,
    });
    {
        let u = h.as_ustar_mut().expect("a ustar header");
        u.uname[..4].copy_from_slice(b"root");
        u.gname[..4].copy_from_slice(b"root");
        // The name in ustar's name field, or split at a '/' into prefix and name.
        let split = if name.len() <= 100 {
            Some(0)
        } else {
            (0..name.len())
                .filter(|&i| name[i] == b'/' && i <= 155 && name.len() - i - 1 <= 100 && i > 0)
                .map(|i| i + 1)
                .next()
        };
        match split {
            Some(0) => u.name[..name.len()].copy_from_slice(name),
            Some(i) => {
                u.prefix[..i - 1].copy_from_slice(&name[..i - 1]);
                u.name[..name.len() - i].copy_from_slice(&name[i..]);
            }
            None => {
                // Too long for ustar: a PAX header carries the name, the ustar field a stub.
                let rec = pax_record(b"path", name);
                let mut x = tar::Header::new_ustar();
                x.set_entry_type(tar::EntryType::XHeader);
                x.set_size(rec.len() as u64);
                x.set_mode(0o644);
                let xn = b"././@PaxHeader";
                x.as_ustar_mut().expect("ustar").name[..xn.len()].copy_from_slice(xn);
                x.set_cksum();
                out.extend_from_slice(x.as_bytes());
                padded(out, &rec);
                let stub = &name[name.len().saturating_sub(100)..];
                u.name[..stub.len()].copy_from_slice(stub);
            }
        }
    }
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    if kind == NewKind::File {
        padded(out, data);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        for n in [0, 1, 5, 90, 93, 94, 95, 996, 997, 9995] {
            let v = vec![b'a'; n];
            let r = pax_record(b"path", &v);
            let sp = r.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&r[..sp]).unwrap().parse().unwrap();
            assert_eq!(len, r.len(), "value of {n} bytes");
        }
    }

    #[test]
    fn size_records_are_taken_out() {
        let mut d = pax_record(b"path", b"metadata.yaml");
        d.extend(pax_record(b"size", b"12"));
        d.extend(pax_record(b"mtime", b"1.5"));
        let mut want = pax_record(b"path", b"metadata.yaml");
        want.extend(pax_record(b"mtime", b"1.5"));
        assert_eq!(pax_without_size(&d), want);
    }
}
