# lxdimg — the README's two commands are `make run` and `make test`; both install what they need.
SHELL := /bin/bash
CARGO ?= cargo
LXDIMG := target/release/lxdimg

.PHONY: run test bench bench-inputs setup build wasm-check lxd-setup lxd-diff stream-real make-real rewrite-real unit hostile demo clean

# System packages the tests use: squashfs-tools (mksquashfs), qemu-utils (qemu-img), compressors
# for the benchmarks, nginx (serves `lxdimg stream` trees to the real clients), and LXD 5.0.2 (Debian 12) as the reference validator; clang and llvm
# (llvm-ar) compile libzstd for the wasm32 build; libarchive-tools (bsdtar) writes sparse members.
APT_PKGS := squashfs-tools qemu-utils xz-utils zstd bzip2 gzip curl clang llvm libarchive-tools nginx
# Go and pongo2 (the engine LXD renders templates with): tests/render.rs checks lxdimg's renderer
# against pongo2 itself.
APT_PKGS += golang-go golang-github-flosch-pongo2.v4-dev
include mk/common.mk

setup: rust-wasm-target
	$(call apt_install,$(APT_PKGS))

build:
	$(CARGO) build --release --locked

# The library must build for wasm32 with no host imports.
wasm-check:
	$(CARGO) build --lib --release --locked --target wasm32-unknown-unknown
	@python3 scripts/wasm-imports.py target/wasm32-unknown-unknown/release/lxdimg.wasm

# The hostile corpus runs in `hostile` (release, default limits), not here.
unit:
	$(CARGO) test --locked -- --skip hostile_corpus

# The hostile corpus (tests/hostile.rs): decompression bombs at the default 1 GiB limit and every
# other class, each within 64 MiB + the stream's decoder window; prints the per-class table.
hostile:
	$(CARGO) test --release --locked --test hostile -- --nocapture --test-threads=1

# `lxdimg stream` trees served by nginx over HTTPS to the real LXD 5.0.2 and Incus 6.0.4 clients,
# beside the peer tool incus-simplestreams (tests/stream/real.sh).
stream-real: build lxd-setup
	LXDIMG=$(LXDIMG) bash tests/stream/real.sh

# `lxdimg make` from a debootstrap rootfs (tar, gz, xz, zst, squashfs, docker export) and `lxdimg
# repair` of each repairable class, imported and created by the real LXD 5.0.2 and Incus 6.0.4.
make-real: build lxd-setup
	$(call apt_install,debootstrap squashfs-tools xz-utils zstd)
	LXDIMG=$(LXDIMG) bash tests/make/real.sh

# The streaming rewrite of a unified image (src/rewrite/) against the real LXD 5.0.2 and Incus 6.0.4:
# broken images refused, rewritten ones imported under lxdimg's fingerprint and created (tests/rewrite/real.sh).
rewrite-real: build lxd-setup
	LXDIMG=$(LXDIMG) bash tests/rewrite/real.sh

# The real daemons the verdicts are checked against: LXD 5.0.2 (Debian 12) and Incus 6.0.4
# (bookworm-backports), side by side.
lxd-setup:
	bash scripts/lxd-setup.sh
	bash scripts/incus-setup.sh

# The two daemons are compared at the same time (each run mostly waits for its daemon); each
# log is printed whole once both are done.
lxd-diff: build lxd-setup
	@mkdir -p target; fail=0; \
	for d in lxd incus; do \
	  ( LXDIMG=$(LXDIMG) python3 tests/lxd_differential.py --daemon $$d && \
	    LXDIMG=$(LXDIMG) python3 tests/lxd_creatable.py --daemon $$d ) > target/lxd-diff-$$d.log 2>&1 & \
	done; \
	for j in 1 2; do wait -n || fail=1; done; \
	for d in lxd incus; do echo "== lxd-diff --daemon $$d"; cat target/lxd-diff-$$d.log; done; \
	exit $$fail

# www/www.mk and worker/worker.mk add their own targets to EXTRA_TESTS / EXTRA_BENCH.
EXTRA_TESTS :=
EXTRA_BENCH :=
-include www/www.mk
-include worker/worker.mk
include mk/fuzz.mk

test: setup build wasm-check unit hostile lxd-diff stream-real make-real rewrite-real $(EXTRA_TESTS)

# Builds the CLI, makes a small demo image and inspects it.
demo: build
	@bash scripts/demo-image.sh target/demo
	$(LXDIMG) inspect target/demo/demo.tar.xz || true

# The page and the edge worker on http://127.0.0.1:8080/ (wrangler dev), after a CLI demo.
run: setup demo
	@echo
	@echo "CLI: $(LXDIMG) inspect IMAGE [ROOTFS]   (--json for the report)"
	@$(MAKE) --no-print-directory run-worker

# The inputs every bench shares (bench/make-inputs.sh: reproducible, built once into bench/data/).
bench-inputs:
	bash bench/make-inputs.sh

bench: setup build bench-inputs $(EXTRA_BENCH)
	bash bench/run.sh

clean:
	$(CARGO) clean
