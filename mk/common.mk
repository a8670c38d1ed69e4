# Helpers shared by the root Makefile, www/www.mk and worker/worker.mk: installing Debian packages,
# the Rust wasm target and wasm-pack, and the one recipe that builds pkg/ (the wasm core the page
# and the edge worker import).

# $(call apt_install,PKG...): installs the packages that are missing (one apt-get update first);
# prints the end of the log if that fails. Used as a recipe line.
define apt_install
@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
if [ -n "$$missing" ]; then echo "installing:$$missing"; \
  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing) >/tmp/lxdimg-apt.log 2>&1 \
  || { tail -20 /tmp/lxdimg-apt.log; exit 1; }; fi
endef

WASM_PACK ?= $(shell command -v wasm-pack 2>/dev/null || echo $(HOME)/.cargo/bin/wasm-pack)

.PHONY: rust-wasm-target wasm-pack-tool wasm-pkg

rust-wasm-target:
	@rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

wasm-pack-tool:
	@test -x $(WASM_PACK) || { echo "installing wasm-pack"; $(CARGO) install --locked wasm-pack; }

# pkg/ = wasm-pack build --target web, rebuilt only when a Rust source or the manifest changed.
# wasm-pack installs the matching wasm-bindgen-cli itself (through cargo) on first use; wasm-opt is
# off (Cargo.toml): opt-level 3 + SIMD from rustc is what was measured. libzstd is compiled to
# wasm32 with clang (the root Makefile's `setup` installs it).
PKG_SOURCES := $(shell find src -type f) Cargo.toml Cargo.lock .cargo/config.toml
pkg/lxdimg_bg.wasm: $(PKG_SOURCES) | setup rust-wasm-target wasm-pack-tool
	$(WASM_PACK) --log-level warn build --target web --release --out-dir pkg
	@touch $@
	@ls -l pkg/lxdimg_bg.wasm | awk '{printf "pkg/lxdimg_bg.wasm: %d bytes\n", $$5}'

wasm-pkg: pkg/lxdimg_bg.wasm
