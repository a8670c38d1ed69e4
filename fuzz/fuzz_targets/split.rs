#![no_main]
// The harness is shared with the regression replay: tests/harness/mod.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| lxdimg_fuzz::harness::split(data));
