# `make fuzz`: every cargo-fuzz target (fuzz/fuzz_targets/) for FUZZ_SECONDS each, one after the
# other, from seeds the tests generate (scripts/fuzz.sh). Findings land in tests/regressions/,
# which `cargo test` (and so `make test`) replays.
FUZZ_SECONDS ?= 60
CARGO_FUZZ_BIN ?= $(HOME)/.cargo/bin/cargo-fuzz

.PHONY: fuzz fuzz-tools

fuzz-tools:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null 2>&1 || test -x $(CARGO_FUZZ_BIN) || { echo "installing cargo-fuzz"; $(CARGO) install --locked cargo-fuzz; }

fuzz: setup fuzz-tools
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh
