//! lxdimg: fingerprint, validate and explain LXD/Incus image files.
//!
//! The core is a sans-IO state machine: bytes go in through [`Inspector::push`] in any chunk size,
//! a [`Report`] comes out of [`Inspector::finish`]. It performs no I/O, reads no clock, starts no
//! thread and keeps no global state, so the same code runs natively (the `lxdimg` CLI) and as
//! WebAssembly (the page and the edge worker), and gives the same report for the same bytes
//! however they are chunked.
//!
//! ```
//! let mut inspector = lxdimg::Inspector::new(lxdimg::Options::default());
//! inspector.push(b"not an image");
//! let report = inspector.finish();
//! assert_eq!(report.verdicts["lxd-5.0"].error.as_deref(), Some("Unsupported compression"));
//! ```

pub mod arch;
mod assemble;
pub mod codes;
pub mod controls;
pub mod creatable;
pub mod decode;
pub mod detect;
pub mod findings;
mod inspector;
pub mod limits;
pub mod make;
pub mod repair;
pub mod report;
pub mod rewrite;
pub mod rootfs;
pub mod simplestreams;
pub mod tar;
pub mod template;
#[cfg(test)]
mod tsgen;
pub mod verdict;
pub mod view;
#[cfg(target_arch = "wasm32")]
pub mod wasm;
pub mod yaml;

pub use codes::{FindingCode, Severity};
pub use inspector::{ApiError, Inspector, Options};
pub use report::{CreatableCode, Finding, ImageFormat, ImageType, Report, Verdict, Verdicts};

/// The LXD fingerprint alone: SHA-256 over the unified file, or the metadata file then the rootfs.
#[derive(Clone, Default)]
pub struct Fingerprinter {
    sha: sha2::Sha256,
}

impl Fingerprinter {
    pub fn new() -> Self {
        Self::default()
    }
    /// Feeds the next bytes (of the metadata file, then of the rootfs file).
    pub fn push(&mut self, chunk: &[u8]) {
        sha2::Digest::update(&mut self.sha, chunk);
    }
    /// The fingerprint as 64 lowercase hex digits.
    pub fn finish(self) -> String {
        sha2::Digest::finalize(self.sha)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
