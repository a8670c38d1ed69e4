//! The part plan of an upload session (issue 10): which byte ranges of which file are the parts
//! the worker still needs, from the session's answer (`partBytes`, each file's `parts` and
//! `stored`). Pure: no I/O, so the resume logic is unit-tested here.

use std::collections::BTreeSet;

/// One file of a session as the worker describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFile {
    /// LXD's multipart name: `unified`, `metadata`, `rootfs` or `rootfs.img`.
    pub role: String,
    pub size: u64,
    /// Number of parts (from 1); the last one is the remainder.
    pub parts: u64,
    /// Part numbers the worker already holds.
    pub stored: BTreeSet<u64>,
}

/// A part still to send: file index into [`Plan::files`], part number (from 1), byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task {
    pub file: usize,
    pub part: u64,
    pub offset: u64,
    pub len: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub part_bytes: u64,
    pub files: Vec<PlanFile>,
}

/// How many parts a file of `size` bytes has at `part_bytes` per part (an empty file is one
/// empty part).
pub fn part_count(size: u64, part_bytes: u64) -> u64 {
    if size == 0 {
        1
    } else {
        size.div_ceil(part_bytes)
    }
}

impl Plan {
    /// Checks the worker's plan against the local files (`sizes`, by role) and the part size: a
    /// worker that counts parts differently, or names a part that cannot exist, is an error (the
    /// client would otherwise send the wrong bytes under a part number).
    pub fn new(
        part_bytes: u64,
        files: Vec<PlanFile>,
        sizes: &[(&str, u64)],
    ) -> Result<Plan, String> {
        if part_bytes == 0 {
            return Err("the server's partBytes is 0".into());
        }
        if files.len() != sizes.len() {
            return Err(format!(
                "the server's session has {} files, this upload {}",
                files.len(),
                sizes.len()
            ));
        }
        for (f, (role, size)) in files.iter().zip(sizes) {
            if f.role != *role || f.size != *size {
                return Err(format!(
                    "the server's session has file {} of {} bytes where this upload has {} of {} bytes",
                    f.role, f.size, role, size
                ));
            }
            let want = part_count(f.size, part_bytes);
            if f.parts != want && !(f.size == 0 && f.parts == 0) {
                return Err(format!(
                    "the server counts {} parts for {} ({} bytes at {} per part), not {}",
                    f.parts, f.role, f.size, part_bytes, want
                ));
            }
            if let Some(bad) = f.stored.iter().find(|&&p| p == 0 || p > f.parts) {
                return Err(format!(
                    "the server says part {bad} of {} is stored, which has {} parts",
                    f.role, f.parts
                ));
            }
        }
        Ok(Plan { part_bytes, files })
    }

    /// The byte range of part `part` (from 1) of file `file`.
    pub fn task(&self, file: usize, part: u64) -> Task {
        let f = &self.files[file];
        let offset = (part - 1) * self.part_bytes;
        let len = self.part_bytes.min(f.size.saturating_sub(offset));
        Task {
            file,
            part,
            offset,
            len,
        }
    }

    /// The parts not stored yet, file by file, in part order.
    pub fn missing(&self) -> Vec<Task> {
        let mut out = Vec::new();
        for (i, f) in self.files.iter().enumerate() {
            for p in 1..=f.parts {
                if !f.stored.contains(&p) {
                    out.push(self.task(i, p));
                }
            }
        }
        out
    }

    /// Bytes of all files (the progress bar's length).
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Bytes already stored on the server (where the progress bar starts).
    pub fn stored_bytes(&self) -> u64 {
        (0..self.files.len())
            .flat_map(|i| self.files[i].stored.iter().map(move |&p| (i, p)))
            .map(|(i, p)| self.task(i, p).len)
            .sum()
    }

    /// Part counts: (stored, all).
    pub fn counts(&self) -> (u64, u64) {
        let all = self.files.iter().map(|f| f.parts).sum();
        let stored = self.files.iter().map(|f| f.stored.len() as u64).sum();
        (stored, all)
    }

    /// Records parts as stored (e.g. from a 409 `missing` answer: everything else is stored).
    pub fn set_missing(&mut self, role: &str, missing: &BTreeSet<u64>) -> Result<(), String> {
        let f = self
            .files
            .iter_mut()
            .find(|f| f.role == role)
            .ok_or_else(|| {
                format!(
                    "the server says parts of {role} are missing, a file this upload does not have"
                )
            })?;
        if let Some(bad) = missing.iter().find(|&&p| p == 0 || p > f.parts) {
            return Err(format!(
                "the server says part {bad} of {role} is missing, which has {} parts",
                f.parts
            ));
        }
        f.stored = (1..=f.parts).filter(|p| !missing.contains(p)).collect();
        Ok(())
    }
}

/// Delay before retry number `attempt` (0 = the first retry): `base` doubled each time, at most
/// `cap`, plus up to a quarter of it as jitter (`jitter` in 0..1) so that parallel parts that
/// failed together do not come back together.
pub fn backoff(attempt: u32, base_ms: u64, cap_ms: u64, jitter: f64) -> std::time::Duration {
    let d = base_ms.saturating_mul(1u64 << attempt.min(30)).min(cap_ms);
    let extra = (d as f64 * 0.25 * jitter.clamp(0.0, 1.0)) as u64;
    std::time::Duration::from_millis(d + extra)
}

/// Whether a failed request is worth repeating: a network error or a server error (5xx) may
/// pass; a 4xx answer (wrong size, bad token, session gone) will not.
pub fn retryable(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => (500..600).contains(&s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(role: &str, size: u64, pb: u64, stored: &[u64]) -> PlanFile {
        PlanFile {
            role: role.into(),
            size,
            parts: part_count(size, pb),
            stored: stored.iter().copied().collect(),
        }
    }

    /// Every byte of every file is covered exactly once by the parts, each part has `pb` bytes
    /// except a file's last, and the stored parts are never planned again: sizes around every
    /// multiple of the part size, every subset of stored parts of a small file.
    #[test]
    fn parts_cover_each_file_once() {
        for pb in [1u64, 2, 5, 7, 5 << 20] {
            for size in [
                0u64,
                1,
                pb - 1,
                pb,
                pb + 1,
                2 * pb - 1,
                2 * pb,
                3 * pb + 1,
                10 * pb - 1,
            ] {
                let n = part_count(size, pb);
                let subsets = 1u32 << n.min(8);
                for mask in 0..subsets {
                    let stored: Vec<u64> = (1..=n.min(8))
                        .filter(|p| mask & (1 << (p - 1)) != 0)
                        .collect();
                    let plan = Plan::new(
                        pb,
                        vec![file("unified", size, pb, &stored)],
                        &[("unified", size)],
                    )
                    .unwrap();
                    let missing = plan.missing();
                    // Missing + stored = every part, no duplicates.
                    let mut all: Vec<u64> = missing
                        .iter()
                        .map(|t| t.part)
                        .chain(stored.iter().copied())
                        .collect();
                    all.sort();
                    assert_eq!(
                        all,
                        (1..=n).collect::<Vec<_>>(),
                        "pb {pb} size {size} stored {stored:?}"
                    );
                    // Ranges of all parts tile [0, size).
                    let mut at = 0;
                    for p in 1..=n {
                        let t = plan.task(0, p);
                        assert_eq!(t.offset, at);
                        if p < n {
                            assert_eq!(t.len, pb);
                        } else {
                            assert!(t.len <= pb && (t.len > 0 || size == 0));
                        }
                        at += t.len;
                    }
                    assert_eq!(at, size);
                    let stored_bytes: u64 = stored.iter().map(|&p| plan.task(0, p).len).sum();
                    assert_eq!(plan.stored_bytes(), stored_bytes);
                    assert_eq!(
                        plan.stored_bytes() + missing.iter().map(|t| t.len).sum::<u64>(),
                        size
                    );
                }
            }
        }
    }

    #[test]
    fn split_plan_is_per_file() {
        let pb = 10;
        let plan = Plan::new(
            pb,
            vec![
                file("metadata", 15, pb, &[2]),
                file("rootfs", 31, pb, &[1, 4]),
            ],
            &[("metadata", 15), ("rootfs", 31)],
        )
        .unwrap();
        let m: Vec<(usize, u64, u64, u64)> = plan
            .missing()
            .iter()
            .map(|t| (t.file, t.part, t.offset, t.len))
            .collect();
        assert_eq!(m, vec![(0, 1, 0, 10), (1, 2, 10, 10), (1, 3, 20, 10)]);
        assert_eq!(plan.counts(), (3, 6));
        assert_eq!(plan.total_bytes(), 46);
        assert_eq!(plan.stored_bytes(), 5 + 10 + 1);
    }

    /// A session that does not describe these files, or counts parts its own way, is refused
    /// before a byte is sent.
    #[test]
    fn inconsistent_sessions_are_refused() {
        let pb = 10;
        let ok = || file("unified", 25, pb, &[]);
        assert!(Plan::new(pb, vec![ok()], &[("unified", 25)]).is_ok());
        assert!(Plan::new(0, vec![ok()], &[("unified", 25)]).is_err());
        assert!(Plan::new(pb, vec![ok()], &[("unified", 26)])
            .unwrap_err()
            .contains("26 bytes"));
        assert!(Plan::new(pb, vec![ok()], &[("metadata", 25)]).is_err());
        assert!(Plan::new(pb, vec![ok()], &[("unified", 25), ("rootfs", 1)]).is_err());
        let mut f = ok();
        f.parts = 2;
        assert!(Plan::new(pb, vec![f], &[("unified", 25)])
            .unwrap_err()
            .contains("counts 2 parts"));
        for bad in [0, 4, 99] {
            let mut f = ok();
            f.stored.insert(bad);
            assert!(
                Plan::new(pb, vec![f], &[("unified", 25)]).is_err(),
                "stored part {bad}"
            );
        }
    }

    #[test]
    fn a_409_missing_list_replaces_what_is_stored() {
        let pb = 10;
        let mut plan = Plan::new(
            pb,
            vec![file("unified", 45, pb, &[1, 2, 3, 4, 5])],
            &[("unified", 45)],
        )
        .unwrap();
        assert!(plan.missing().is_empty());
        plan.set_missing("unified", &[2, 5].into_iter().collect())
            .unwrap();
        let parts: Vec<u64> = plan.missing().iter().map(|t| t.part).collect();
        assert_eq!(parts, vec![2, 5]);
        assert_eq!(plan.missing()[1].len, 5);
        assert!(plan
            .set_missing("rootfs", &[1].into_iter().collect())
            .is_err());
        assert!(plan
            .set_missing("unified", &[6].into_iter().collect())
            .is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let ms = |a, j| backoff(a, 500, 30_000, j).as_millis() as u64;
        assert_eq!(
            (0..8).map(|a| ms(a, 0.0)).collect::<Vec<_>>(),
            vec![500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
        );
        assert_eq!(ms(100, 0.0), 30_000);
        assert_eq!(ms(0, 1.0), 625);
        assert_eq!(ms(10, 5.0), 37_500);
    }

    #[test]
    fn only_network_and_server_errors_are_retried() {
        assert!(retryable(None));
        for s in [500, 502, 503, 504, 599] {
            assert!(retryable(Some(s)), "{s}");
        }
        for s in [400, 401, 404, 409, 413, 422, 429] {
            assert!(!retryable(Some(s)), "{s}");
        }
    }
}
