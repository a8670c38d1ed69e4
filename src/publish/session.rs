//! Upload through a session (`POST /api/uploads`, issue 10): the image's files in parts of the
//! worker's `partBytes`, `jobs` parts in flight on std threads, each read from disk with
//! positioned reads while it is sent (never a whole file, never a whole part in memory), retried
//! with exponential backoff on network errors and 5xx answers. Re-running after an interruption
//! creates the session again with the same fingerprint; the worker answers `resumed` with the
//! parts it holds, and only the others are sent.

use super::plan::{backoff, retryable, Plan, PlanFile, Task};
use super::{published_from, rejected_from, Published};
use indicatif::ProgressBar;
use serde_json::{json, Value};
use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One file of the image: LXD's multipart name, the path, its name as shown by the worker.
pub struct UploadFile {
    pub role: &'static str,
    pub path: PathBuf,
    pub name: String,
    pub size: u64,
}

/// Retry policy: tries per request, first delay, largest delay.
#[derive(Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub base_ms: u64,
    pub cap_ms: u64,
}

impl Retry {
    /// 8 tries, 0.5 s doubling to 30 s (about 1.5 min of waiting in all), or
    /// `LXDIMG_RETRY_BASE_MS` as the first delay (the tests shorten it).
    pub fn from_env() -> Retry {
        let base_ms = std::env::var("LXDIMG_RETRY_BASE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(500);
        Retry {
            attempts: 8,
            base_ms,
            cap_ms: 30_000,
        }
    }
}

/// A failed request: no answer (network), or an HTTP status with the body.
#[derive(Debug)]
pub enum Failure {
    Network(String),
    Status(u16, String),
}

impl Failure {
    fn status(&self) -> Option<u16> {
        match self {
            Failure::Network(_) => None,
            Failure::Status(s, _) => Some(*s),
        }
    }
    fn into_io(self, what: &str) -> io::Error {
        match self {
            Failure::Network(m) => io::Error::other(format!("{what}: {m}")),
            Failure::Status(code, body) => {
                io::Error::other(format!("{what}: HTTP {code}: {}", error_text(&body)))
            }
        }
    }
}

/// The worker's `{ "error": "…" }`, or the body as it came.
fn error_text(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.trim().to_string())
}

pub struct Client {
    pub agent: ureq::Agent,
    pub server: String,
    pub token: String,
    pub retry: Retry,
}

fn jitter() -> f64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (n % 1000) as f64 / 1000.0
}

impl Client {
    fn req(&self, method: &str, path: &str) -> ureq::Request {
        self.agent
            .request(method, &format!("{}{path}", self.server))
            .set("Authorization", &format!("Bearer {}", self.token))
    }

    fn answer(r: Result<ureq::Response, ureq::Error>) -> Result<(u16, String), Failure> {
        match r {
            Ok(resp) => {
                let s = resp.status();
                resp.into_string()
                    .map(|t| (s, t))
                    .map_err(|e| Failure::Network(e.to_string()))
            }
            Err(ureq::Error::Status(code, resp)) => Err(Failure::Status(
                code,
                resp.into_string().unwrap_or_default(),
            )),
            Err(ureq::Error::Transport(t)) => Err(Failure::Network(t.to_string())),
        }
    }

    /// Runs `once` until it succeeds, fails for good (4xx), or runs out of tries; `stop` ends the
    /// waiting early (another part failed for good).
    fn with_retries<T>(
        &self,
        what: &str,
        stop: &AtomicBool,
        bar: Option<&ProgressBar>,
        mut once: impl FnMut() -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let mut attempt = 0;
        loop {
            match once() {
                Ok(v) => return Ok(v),
                Err(f)
                    if retryable(f.status())
                        && attempt + 1 < self.retry.attempts
                        && !stop.load(Ordering::Relaxed) =>
                {
                    let wait = backoff(attempt, self.retry.base_ms, self.retry.cap_ms, jitter());
                    let why = match &f {
                        Failure::Network(m) => m.clone(),
                        Failure::Status(c, b) => format!("HTTP {c}: {}", error_text(b)),
                    };
                    let line = format!("{what}: {why}; retrying in {:.1} s", wait.as_secs_f64());
                    // Above the progress bar when one is drawn, else a plain line.
                    match bar.filter(|b| !b.is_hidden()) {
                        Some(b) => b.println(line),
                        None => eprintln!("{line}"),
                    }
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                Err(f) => return Err(f),
            }
        }
    }

    /// A JSON request with retries; every status is returned (the caller decides).
    fn json_call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String), Failure> {
        let never = AtomicBool::new(false);
        self.with_retries(&format!("{method} {path}"), &never, None, || {
            let r = self.req(method, path);
            let r = match body {
                Some(b) => r
                    .set("Content-Type", "application/json")
                    .send_string(&b.to_string()),
                None => r.call(),
            };
            match Self::answer(r) {
                Err(Failure::Status(s, b)) if !retryable(Some(s)) => Ok((s, b)),
                other => other,
            }
        })
    }

    /// `GET /api/version`: `(maxRequestBytes, partBytes)`, or None for a worker without sessions.
    pub fn limits(&self) -> io::Result<Option<(u64, u64)>> {
        let (status, text) = self
            .json_call("GET", "/api/version", None)
            .map_err(|f| f.into_io(&self.server))?;
        if status != 200 {
            return Ok(None);
        }
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        let max = v.get("maxRequestBytes").and_then(Value::as_u64);
        let part = v.get("partBytes").and_then(Value::as_u64);
        Ok(match (max, part) {
            (Some(m), Some(p)) if m > 0 && p > 0 => Some((m, p)),
            _ => None,
        })
    }
}

/// What `POST /api/uploads` answered.
enum Created {
    /// The fingerprint is already stored (aliases added): nothing to send.
    Exists(Published),
    /// A new or resumed session.
    Session {
        id: String,
        resumed: bool,
        plan: Plan,
    },
}

fn plan_from(v: &Value, files: &[UploadFile]) -> Result<Plan, String> {
    let part_bytes = v
        .get("partBytes")
        .and_then(Value::as_u64)
        .ok_or("no partBytes in the session")?;
    let list = v
        .get("files")
        .and_then(Value::as_array)
        .ok_or("no files in the session")?;
    let mut out = Vec::new();
    for f in list {
        out.push(PlanFile {
            role: f
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            size: f.get("size").and_then(Value::as_u64).unwrap_or(u64::MAX),
            parts: f.get("parts").and_then(Value::as_u64).unwrap_or(0),
            stored: f
                .get("stored")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default(),
        });
    }
    let sizes: Vec<(&str, u64)> = files.iter().map(|f| (f.role, f.size)).collect();
    Plan::new(part_bytes, out, &sizes)
}

fn bad_answer(server: &str, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected answer from {server}: {what}"),
    )
}

fn create(
    client: &Client,
    files: &[UploadFile],
    aliases: &[String],
    fingerprint: Option<&str>,
) -> io::Result<Created> {
    let mut body = json!({
        "files": files.iter().map(|f| json!({ "role": f.role, "size": f.size, "name": f.name })).collect::<Vec<_>>(),
        "aliases": aliases,
    });
    if let Some(fp) = fingerprint {
        body["fingerprint"] = json!(fp);
    }
    let (status, text) = client
        .json_call("POST", "/api/uploads", Some(&body))
        .map_err(|f| f.into_io(&client.server))?;
    if status != 200 && status != 201 {
        return Err(io::Error::other(format!(
            "{}: creating the upload session: HTTP {status}: {}",
            client.server,
            error_text(&text)
        )));
    }
    let v: Value = serde_json::from_str(&text).map_err(|e| bad_answer(&client.server, e))?;
    if v.get("status").and_then(Value::as_str) == Some("exists") {
        let image = v.get("image").cloned().unwrap_or_default();
        return Ok(Created::Exists(published_from(&image, 200, aliases)));
    }
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .ok_or_else(|| bad_answer(&client.server, "no usable session id"))?
        .to_string();
    let plan = plan_from(&v, files).map_err(|e| bad_answer(&client.server, e))?;
    Ok(Created::Session {
        id,
        resumed: v.get("resumed").and_then(Value::as_bool).unwrap_or(false),
        plan,
    })
}

/// Reads `len` bytes of `file` from `offset` with positioned reads, advancing `bar` and `sent`.
struct PartReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    bar: &'a ProgressBar,
    sent: u64,
}

#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(f, buf, pos)
}

#[cfg(windows)]
fn read_at(f: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(f, buf, pos)
}

impl Read for PartReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (self.end - self.pos).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = read_at(self.file, &mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file became shorter while it was sent",
            ));
        }
        self.pos += n as u64;
        self.sent += n as u64;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// Sends one part (with retries). The bar counts the bytes as they go, and gives back those of
/// an attempt that failed.
fn put_part(
    client: &Client,
    id: &str,
    plan: &Plan,
    handles: &[File],
    t: Task,
    bar: &ProgressBar,
    stop: &AtomicBool,
) -> Result<(), Failure> {
    let role = &plan.files[t.file].role;
    let path = format!("/api/uploads/{id}/{role}/{}", t.part);
    client.with_retries(&format!("part {role} {}", t.part), stop, Some(bar), || {
        let mut reader = PartReader {
            file: &handles[t.file],
            pos: t.offset,
            end: t.offset + t.len,
            bar,
            sent: 0,
        };
        let r = client
            .req("PUT", &path)
            .set("Content-Type", "application/octet-stream")
            .set("Content-Length", &t.len.to_string())
            .send(&mut reader);
        let res = Client::answer(r);
        if res.is_err() {
            bar.dec(reader.sent);
        }
        res.map(|_| ())
    })
}

/// Sends `tasks` with `jobs` threads; the first part that fails for good stops the others (they
/// finish the part in flight).
fn send_parts(
    client: &Client,
    id: &str,
    plan: &Plan,
    handles: &[File],
    tasks: Vec<Task>,
    jobs: usize,
    bar: &ProgressBar,
) -> io::Result<()> {
    let queue = Mutex::new(VecDeque::from(tasks));
    let stop = AtomicBool::new(false);
    let failed: Mutex<Option<io::Error>> = Mutex::new(None);
    let log = bar.is_hidden();
    let total_parts: u64 = plan.files.iter().map(|f| f.parts).sum();
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Some(t) = queue.lock().unwrap().pop_front() else {
                    return;
                };
                match put_part(client, id, plan, handles, t, bar, &stop) {
                    Ok(()) => {
                        if log {
                            // Without a terminal (logs, CI, the tests): one line per part.
                            eprintln!(
                                "stored part {} {}/{} ({} bytes, {} parts in all)",
                                plan.files[t.file].role,
                                t.part,
                                plan.files[t.file].parts,
                                t.len,
                                total_parts
                            );
                        }
                    }
                    Err(f) => {
                        stop.store(true, Ordering::Relaxed);
                        let role = &plan.files[t.file].role;
                        let e = f.into_io(&format!("{}: part {role} {}", client.server, t.part));
                        failed.lock().unwrap().get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    match failed.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `POST /api/uploads/{id}/complete` until it gives an answer: the image, a rejection, or the
/// parts still missing. A 409 without `missing` (another completion is validating) waits on the
/// status route.
enum Completed {
    Done(Published),
    Missing(Vec<(String, BTreeSet<u64>)>),
}

fn complete(client: &Client, id: &str, aliases: &[String]) -> io::Result<Completed> {
    let started = Instant::now();
    loop {
        let (status, text) = client
            .json_call(
                "POST",
                &format!("/api/uploads/{id}/complete"),
                Some(&json!({})),
            )
            .map_err(|f| f.into_io(&client.server))?;
        match status {
            200 | 201 => {
                let v: Value =
                    serde_json::from_str(&text).map_err(|e| bad_answer(&client.server, e))?;
                return Ok(Completed::Done(published_from(&v, status, aliases)));
            }
            422 => return Err(rejected_from(text)),
            // Another call is validating the session: ask again after a while.
            202 if started.elapsed() < Duration::from_secs(3600) => {
                std::thread::sleep(Duration::from_secs(2));
            }
            409 => {
                let v: Value = serde_json::from_str(&text).unwrap_or_default();
                if let Some(m) = v.get("missing").and_then(Value::as_object) {
                    let list = m
                        .iter()
                        .map(|(role, parts)| {
                            let set = parts
                                .as_array()
                                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                                .unwrap_or_default();
                            (role.clone(), set)
                        })
                        .collect();
                    return Ok(Completed::Missing(list));
                }
                // Not open: validating (wait), or already finished (the status route says how).
                let (s, t) = client
                    .json_call("GET", &format!("/api/uploads/{id}"), None)
                    .map_err(|f| f.into_io(&client.server))?;
                if s == 422 {
                    return Err(rejected_from(t));
                }
                let st: Value = serde_json::from_str(&t).unwrap_or_default();
                match st.get("status").and_then(Value::as_str) {
                    Some("complete") if st.get("image").is_some() => {
                        return Ok(Completed::Done(published_from(&st["image"], 200, aliases)));
                    }
                    Some("validating") | Some("complete")
                        if started.elapsed() < Duration::from_secs(3600) =>
                    {
                        std::thread::sleep(Duration::from_secs(2));
                    }
                    _ => {
                        return Err(io::Error::other(format!(
                            "{}: completing session {id}: HTTP 409: {}",
                            client.server,
                            error_text(&text)
                        )))
                    }
                }
            }
            code => {
                return Err(io::Error::other(format!(
                    "{}: completing session {id}: HTTP {code}: {}",
                    client.server,
                    error_text(&text)
                )))
            }
        }
    }
}

/// The whole session: create (or resume), send the missing parts, complete.
pub fn upload(
    client: &Client,
    files: &[UploadFile],
    aliases: &[String],
    fingerprint: Option<&str>,
    jobs: usize,
    bar: impl Fn(u64) -> ProgressBar,
) -> io::Result<Published> {
    let handles: Vec<File> = files
        .iter()
        .map(|f| {
            File::open(&f.path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", f.path.display())))
        })
        .collect::<io::Result<_>>()?;
    let (id, resumed, mut plan) = match create(client, files, aliases, fingerprint)? {
        Created::Exists(p) => return Ok(p),
        Created::Session { id, resumed, plan } => (id, resumed, plan),
    };
    let (stored, all) = plan.counts();
    if resumed {
        eprintln!(
            "resuming upload session {id}: {stored} of {all} parts already stored, sending {}",
            all - stored
        );
    } else {
        eprintln!(
            "upload session {id}: {all} parts of up to {} bytes",
            plan.part_bytes
        );
    }
    let pb = bar(plan.total_bytes());
    pb.set_position(plan.stored_bytes());
    // At most three rounds: a completion that names missing parts (a part lost by the server)
    // gets them sent again.
    let started = Instant::now();
    for round in 0..3 {
        let tasks = plan.missing();
        let count = tasks.len();
        let sending = Instant::now();
        if !tasks.is_empty() {
            if let Err(e) = send_parts(client, &id, &plan, &handles, tasks, jobs, &pb) {
                pb.abandon();
                eprintln!("the upload session stays open: run the same command again to send the missing parts");
                return Err(e);
            }
        }
        let sent = sending.elapsed();
        let completing = Instant::now();
        pb.set_style(super::server_checking_style());
        pb.reset_elapsed();
        pb.enable_steady_tick(Duration::from_millis(150));
        let answer = complete(client, &id, aliases);
        pb.disable_steady_tick();
        pb.set_style(super::uploading_style());
        if round == 0 {
            // Where the time went: sending, then the server's validation of the assembled files.
            pb.suspend(|| {
                eprintln!(
                    "sent {} parts in {:.2} s; the server checked the image in {:.2} s ({:.2} s in all)",
                    count,
                    sent.as_secs_f64(),
                    completing.elapsed().as_secs_f64(),
                    started.elapsed().as_secs_f64()
                )
            });
        }
        match answer {
            Ok(Completed::Done(p)) => {
                pb.finish_and_clear();
                return Ok(p);
            }
            Ok(Completed::Missing(m)) if round < 2 => {
                for (role, parts) in &m {
                    plan.set_missing(role, parts)
                        .map_err(|e| bad_answer(&client.server, e))?;
                }
                eprintln!(
                    "the server is missing {} parts; sending them again",
                    plan.missing().len()
                );
                pb.set_position(plan.stored_bytes());
            }
            Ok(Completed::Missing(m)) => {
                pb.abandon();
                return Err(io::Error::other(format!(
                    "{}: session {id} still misses parts after sending them: {m:?}",
                    client.server
                )));
            }
            Err(e) => {
                pb.finish_and_clear();
                return Err(e);
            }
        }
    }
    unreachable!("the loop returns in its last round")
}
