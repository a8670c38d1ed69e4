# The edge worker (worker/): included by the root Makefile. Every install step is here and is
# idempotent (quick when already done): npm packages (wrangler, miniflare), the wasm build of the core in pkg/ (wasm-pack), nginx for the benchmark.
#
#   make run-worker        wrangler dev on http://127.0.0.1:8080: the page (www/) + the API
#   make test-worker       worker tests in workerd (Miniflare) + unit tests (part of `make test`)
#   make test-worker-sessions  upload sessions in workerd: a ~300 MB image in parts at the default
#                          MAX_REQUEST_BYTES, resume, rejection, sweep, twins (part of `make test`)
#   make test-worker-attack  the worker under attack, checked by listing R2 and querying D1, and a
#                          short load test that must see no error (part of `make test`)
#   make test-worker-lxd   the real LXD 5.0.2 client against the worker over HTTPS (part of `make test`)
#   make test-worker-publish  `lxdimg publish` through upload sessions: resume, --jobs, retries (part of `make test`)
#   make test-worker-sessions-real  images published through sessions, imported by LXD 5.0.2 and Incus 6.0.4 (part of `make test`)
#   make bench-worker      upload validation and URL-import answers (part of `make bench`)
#   make bench-publish     lxdimg publish of ~300 MB: one request vs sessions at --jobs 1, 2, 4 (part of `make bench`)
#   make load-worker       load test: URL-import answers and downloads, req/s, p99, error rate (part of `make bench`)

WORKER_DIR := worker
WRANGLER := $(WORKER_DIR)/node_modules/.bin/wrangler
export WRANGLER_SEND_METRICS := false

.PHONY: worker-deps worker-pkg worker-build worker-images test-worker test-worker-unit test-worker-sessions test-worker-attack test-worker-lxd run-worker bench-worker load-worker

EXTRA_TESTS += test-worker test-worker-sessions test-worker-attack test-worker-lxd
EXTRA_BENCH += bench-worker load-worker

# lxdimg publish through upload sessions (the CLI, the real clients) and its benchmark.
.PHONY: test-worker-publish test-worker-sessions-real bench-publish
EXTRA_TESTS += test-worker-publish test-worker-sessions-real
EXTRA_BENCH += bench-publish

$(WORKER_DIR)/node_modules/.package-lock.json: $(WORKER_DIR)/package.json $(WORKER_DIR)/package-lock.json
	cd $(WORKER_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

worker-deps: $(WORKER_DIR)/node_modules/.package-lock.json

# pkg/ (git-ignored) is the wasm core, built by the one recipe in mk/common.mk.
worker-pkg: wasm-pkg

worker-build: worker-deps worker-pkg
	cd $(WORKER_DIR) && ./node_modules/.bin/wrangler deploy --dry-run --outdir .build >/dev/null

worker-images:
	@bash $(WORKER_DIR)/test/make-images.sh $(WORKER_DIR)/test/out/images >/dev/null

test-worker-unit: worker-deps
	cd $(WORKER_DIR) && node --test test/unit.test.js

test-worker: worker-build worker-images
	cd $(WORKER_DIR) && node --test --test-concurrency=1 test/unit.test.js test/worker.test.js

test-worker-sessions: worker-build worker-images
	cd $(WORKER_DIR) && node --test --test-concurrency=1 test/sessions.test.js

test-worker-attack: worker-build worker-images
	cd $(WORKER_DIR) && node --test --test-concurrency=1 test/attack.test.js
	cd $(WORKER_DIR) && node test/load.mjs --quick

# `lxdimg publish` through upload sessions against wrangler dev with a 6 MB request cap: killed and
# resumed, --jobs 1 and 4, split, a worker restarted mid-upload, refused locally and by the worker.
test-worker-publish: worker-build build
	$(call apt_install,squashfs-tools)
	bash $(WORKER_DIR)/test/publish-cli.sh

# Images published through sessions, imported by the real LXD 5.0.2 and Incus 6.0.4 (URL import
# and the simplestreams remote) with the fingerprint lxdimg printed.
test-worker-sessions-real: worker-build build lxd-setup
	bash $(WORKER_DIR)/test/sessions-real.sh

test-worker-lxd: worker-build worker-images build lxd-setup
	bash $(WORKER_DIR)/test/lxd-real.sh

# The database and bucket live in worker/.wrangler/state; the upload token in worker/.dev.vars.
run-worker: worker-deps worker-pkg
	@cd $(WORKER_DIR) && if ! grep -qs '^UPLOAD_TOKEN=' .dev.vars; then \
	  echo "UPLOAD_TOKEN=$$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')" >> .dev.vars; fi
	@cd $(WORKER_DIR) && ./node_modules/.bin/wrangler d1 migrations apply DB --local >/dev/null
	@echo "lxdimg worker: http://127.0.0.1:8080/  (upload token: $$(sed -n 's/^UPLOAD_TOKEN=//p' $(WORKER_DIR)/.dev.vars), in worker/.dev.vars)"
	@echo "  upload:  curl -H \"Authorization: Bearer TOKEN\" --data-binary @IMAGE 'http://127.0.0.1:8080/api/images?alias=NAME'"
	cd $(WORKER_DIR) && ./node_modules/.bin/wrangler dev --ip 127.0.0.1 --port 8080 --show-interactive-dev-session=false

load-worker: worker-build worker-images
	cd $(WORKER_DIR) && node test/load.mjs

# lxdimg publish of a ~300 MB image: one request beside sessions at --jobs 1, 2, 4 (bench/out/publish.txt).
bench-publish: worker-build build
	@mkdir -p bench/out
	bash $(WORKER_DIR)/bench/publish.sh

bench-worker: worker-build build bench-inputs
	$(call apt_install,nginx wrk)
	bash $(WORKER_DIR)/bench/run.sh
