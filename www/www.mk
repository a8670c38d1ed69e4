# The drag-and-drop page (www/) and the wasm package (pkg/). Included by the root Makefile.
#
#   make wasm-pkg    pkg/ = wasm-pack build --target web (what www/ and worker/ import)
#   make run-www     builds pkg/ and serves the page on http://127.0.0.1:8080/
#   make test-www    wasm-bindgen tests in headless Chromium and Firefox + the Playwright e2e test
#                    + the page under attack (test-attack) + publishing from the page (test-publish-page)
#   make bench-www   the browser benchmark (SHA-256 vs hash-wasm vs WebCrypto, inspection vs CLI)
#
# Every tool is installed on first use (Debian packages, cargo, npm); later runs skip that quickly.

GECKODRIVER ?= $(HOME)/.cargo/bin/geckodriver
CHROMEDRIVER ?= /usr/bin/chromedriver
WWW_APT := chromium chromium-driver firefox-esr
WWW_PORT ?= 8080
BROWSER_TESTS := tests/browser

.PHONY: wasm-test-runner www-setup www-browsers www-npm run-www test-www test-wasm test-wasm-chrome test-wasm-firefox test-e2e test-attack test-rewrite-page bench-www

EXTRA_TESTS += test-www
EXTRA_BENCH += bench-www

# Browsers and drivers from Debian (never downloaded by a tool), geckodriver from crates.io.
www-browsers:
	$(call apt_install,$(WWW_APT))
	@test -x $(GECKODRIVER) || { echo "installing geckodriver (cargo, a few minutes)"; $(CARGO) install --locked geckodriver; }

www-npm: $(BROWSER_TESTS)/node_modules/.installed
$(BROWSER_TESTS)/node_modules/.installed: $(BROWSER_TESTS)/package.json $(wildcard $(BROWSER_TESTS)/package-lock.json)
	cd $(BROWSER_TESTS) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

www-setup: www-browsers www-npm rust-wasm-target wasm-pack-tool

run-www: wasm-pkg
	node www/serve.mjs --port $(WWW_PORT)

# The bindings in real browsers: same fixtures and golden reports as tests/fixtures.rs.
target/wasm-fixtures/common.rs: tests/common/mod.rs tests/fixtures.rs $(wildcard tests/golden/*.json) $(BROWSER_TESTS)/gen-wasm-fixtures.py
	python3 $(BROWSER_TESTS)/gen-wasm-fixtures.py

# `wasm-pack test` builds every test target (`cargo build --tests`) for wasm32, and the core's
# native tests cannot build there (they shell out and make symlinks). So this runs only
# tests/wasm.rs with the runner wasm-pack installed (the same thing `wasm-pack test --headless
# --chrome/--firefox` runs); webdriver.json gives the browser flags.
WBG_VERSION = $(shell awk '/^name = "wasm-bindgen"$$/ {getline; gsub(/"/, "", $$3); print $$3}' Cargo.lock)
WBG_RUNNER = $(HOME)/.cache/.wasm-pack/wasm-bindgen-cargo-install-$(WBG_VERSION)/wasm-bindgen-test-runner
WASM_TEST = CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=$(WBG_RUNNER) WASM_BINDGEN_TEST_TIMEOUT=600 \
	$(CARGO) test --locked --target wasm32-unknown-unknown --test wasm

wasm-test-runner: wasm-pkg
	@test -x $(WBG_RUNNER) || { echo "installing wasm-bindgen-cli $(WBG_VERSION)"; \
	  $(CARGO) install --locked wasm-bindgen-cli --version $(WBG_VERSION) --root target/wbg && \
	  mkdir -p $(dir $(WBG_RUNNER)) && cp target/wbg/bin/wasm-bindgen-test-runner $(WBG_RUNNER); }

test-wasm-chrome: www-setup wasm-test-runner target/wasm-fixtures/common.rs
	env -u GECKODRIVER CHROMEDRIVER=$(CHROMEDRIVER) $(WASM_TEST)

test-wasm-firefox: www-setup wasm-test-runner target/wasm-fixtures/common.rs
	env -u CHROMEDRIVER GECKODRIVER=$(GECKODRIVER) $(WASM_TEST)

test-wasm: test-wasm-chrome test-wasm-firefox

# The page in headless Chromium (needs the CLI for the report comparison).
test-e2e: setup www-setup wasm-pkg build
	node $(BROWSER_TESTS)/e2e.mjs

# The page under attack: payloads in every text field, dropped on the page as both of `make run`'s
# servers serve it (www/serve.mjs and the worker under wrangler dev), and the worker's image page;
# the Content-Security-Policy of www/csp.js on each.
test-attack: www-setup wasm-pkg worker-deps
	node $(BROWSER_TESTS)/attack.mjs

# The page rewrites a unified image and saves it as a stream (www/rewrite.js): both sinks, the
# saved file's SHA-256 against the core and the CLI, a truncated image, a ~200 MB image's memory.
test-rewrite-page: setup www-setup wasm-pkg build
	node $(BROWSER_TESTS)/rewrite.mjs

test-www: test-wasm test-e2e test-attack test-rewrite-page

test-www: test-make-www

# "Make an image" and "Fix it" on the page (Playwright): downloads checked against the CLI.
.PHONY: test-make-www
test-make-www: setup www-setup wasm-pkg build
	node $(BROWSER_TESTS)/make.mjs

bench-www: setup www-setup wasm-pkg build bench-inputs
	node $(BROWSER_TESTS)/bench.mjs

# ---- the languages (www/i18n/: English and 简体中文) -------------------------------------------
#   make test-i18n          the catalogues: same keys and placeholders, every key used exists,
#                           every finding code explained in every language (node, < 1 s)
#   make test-i18n-browser  the page and the worker's image page in both languages (Playwright;
#                           part of test-www)
.PHONY: test-i18n test-i18n-browser i18n-fonts
EXTRA_TESTS += test-i18n
test-www: test-i18n-browser

test-i18n:
	node --test tests/i18n/catalogues.test.mjs

# Chinese text needs a CJK font in headless Chromium (else it is drawn as boxes).
i18n-fonts:
	$(call apt_install,fonts-noto-cjk)

test-i18n-browser: www-setup i18n-fonts wasm-pkg worker-deps
	node $(BROWSER_TESTS)/i18n.mjs

# ---- the template preview (www/render.js) ------------------------------------------------------
#   make test-render-browser  an image with templates dropped on the page in headless Chromium:
#                             rendered beside their text, re-rendered on edits, compared with
#                             `lxdimg render --json` (part of test-www)
.PHONY: test-render-browser
test-www: test-render-browser

test-render-browser: www-setup wasm-pkg build
	LXDIMG=$(LXDIMG) node $(BROWSER_TESTS)/render.mjs
# ---- publishing from the page ------------------------------------------------------------------
# "Publish to this server" (www/publish.js) against the worker under wrangler dev with a 6 MB request
# cap: drop, publish, reload mid-upload, resume, the commands, the stored bytes.
.PHONY: test-publish-page
test-www: test-publish-page
test-publish-page: www-setup wasm-pkg worker-deps
	node $(BROWSER_TESTS)/publish.mjs
