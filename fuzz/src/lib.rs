//! The fuzz targets' harness, included from the tests so that `cargo test` replays the
//! regression inputs through exactly the code the fuzzer ran.

#[path = "../../tests/harness/mod.rs"]
pub mod harness;
