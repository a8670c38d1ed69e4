//! `lxdimg stream serve`: the tree over HTTP or HTTPS, for local testing only (a real deployment
//! serves the same static files with nginx, a bucket or a CDN). GET and HEAD, one thread per
//! connection, paths confined to the tree, no directory listings except `index.html`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Longest request head accepted (request line and headers).
const HEAD_MAX: usize = 16 << 10;

pub fn serve(dir: &Path, listen: &str, tls: Option<(PathBuf, PathBuf)>) -> io::Result<i32> {
    let root = dir
        .canonicalize()
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    let config = match tls {
        Some((cert, key)) => Some(Arc::new(tls_config(&cert, &key)?)),
        None => None,
    };
    let listener = TcpListener::bind(listen)
        .map_err(|e| io::Error::new(e.kind(), format!("{listen}: {e}")))?;
    let scheme = if config.is_some() { "https" } else { "http" };
    eprintln!(
        "serving {} on {scheme}://{} (local testing only; Ctrl-C stops)",
        root.display(),
        listener.local_addr()?
    );
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        let root = root.clone();
        let config = config.clone();
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
            let _ = match config {
                Some(c) => match rustls::ServerConnection::new(c) {
                    Ok(conn) => {
                        let mut s = rustls::StreamOwned::new(conn, stream);
                        handle(&root, &mut s)
                    }
                    Err(_) => Ok(()),
                },
                None => {
                    let mut s = stream;
                    handle(&root, &mut s)
                }
            };
        });
    }
    Ok(0)
}

fn tls_config(cert: &Path, key: &Path) -> io::Result<rustls::ServerConfig> {
    let open = |p: &Path| {
        File::open(p)
            .map(BufReader::new)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))
    };
    let certs: Vec<_> = rustls_pemfile::certs(&mut open(cert)?).collect::<Result<_, _>>()?;
    if certs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: no PEM certificate", cert.display()),
        ));
    }
    let key = rustls_pemfile::private_key(&mut open(key)?)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: no PEM private key", key.display()),
        )
    })?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", cert.display()),
            )
        })
}

trait Conn: Read + Write {}
impl<T: Read + Write> Conn for T {}

/// Serves one request, then closes the connection (`Connection: close`).
fn handle(root: &Path, s: &mut dyn Conn) -> io::Result<()> {
    let mut head = Vec::new();
    {
        let mut r = BufReader::new(&mut *s);
        loop {
            let before = head.len();
            let n = (&mut r)
                .take((HEAD_MAX - head.len()) as u64 + 1)
                .read_until(b'\n', &mut head)?;
            if n == 0 {
                return Ok(());
            }
            if head.len() > HEAD_MAX {
                break;
            }
            if head[before..] == *b"\r\n" || head[before..] == *b"\n" {
                break;
            }
        }
    }
    if head.len() > HEAD_MAX {
        respond(s, 431, b"request head too large\n", false)?;
        // Read (a bounded amount of) what the client is still sending, so that closing does not
        // reset the connection before it has read the answer.
        let _ = io::copy(&mut (&mut *s).take(1 << 20), &mut io::sink());
        return Ok(());
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next().unwrap_or("").split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" && method != "HEAD" {
        return respond(s, 405, b"only GET and HEAD\n", false);
    }
    let head_only = method == "HEAD";
    let Some(path) = resolve(root, target) else {
        return respond(s, 404, b"not found\n", head_only);
    };
    match File::open(&path).and_then(|f| f.metadata().map(|m| (f, m))) {
        Ok((mut f, m)) if m.is_file() => {
            let ct = content_type(&path);
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nCache-Control: no-transform\r\nConnection: close\r\n\r\n",
                m.len()
            )?;
            if !head_only {
                io::copy(&mut f, s)?;
            }
            s.flush()
        }
        _ => respond(s, 404, b"not found\n", head_only),
    }
}

fn respond(s: &mut dyn Conn, code: u16, body: &[u8], head_only: bool) -> io::Result<()> {
    let reason = match code {
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    write!(s, "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
    if !head_only {
        s.write_all(body)?;
    }
    s.flush()
}

/// The file a request path names inside the tree, or `None` (no `..`, no hidden files).
fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?;
    let decoded = percent_decode(path)?;
    let mut out = root.to_path_buf();
    for c in Path::new(&decoded).components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) if !n.to_string_lossy().starts_with('.') => out.push(n),
            _ => return None,
        }
    }
    if out.is_dir() {
        out.push("index.html");
    }
    Some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().filter(|s| !s.contains('\0'))
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()) {
        Some("json") => "application/json",
        Some("html") => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_in_the_tree() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        assert_eq!(
            resolve(root, "/streams/v1/index.json?x=1"),
            Some(root.join("streams/v1/index.json"))
        );
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/images/%2e%2e/%2e%2e/etc"), None);
        assert_eq!(resolve(root, "/.lxdimg-stream.lock"), None);
        assert_eq!(resolve(root, "/a%00b"), None);
        assert_eq!(resolve(root, "/"), Some(root.join("index.html")));
    }
}
