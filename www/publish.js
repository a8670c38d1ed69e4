// "Publish to this server": when the page is served by the lxdimg edge worker (its
// `GET /api/version` answers with `maxRequestBytes`), an image the page accepted can be uploaded
// to it through an upload session (worker/README.md, "Upload sessions"): the files in parts of the
// worker's `partBytes`, each part read with `file.slice()` when it is sent (the file is never held
// whole), a few parts in flight, each retried on a network error or a 5xx answer. The session id
// is kept in sessionStorage under the files' name, size and lastModified: after a reload, dropping
// the same file again and pressing Publish asks the session which parts it holds and sends only
// the others (and if that id is gone, creating the session again with the fingerprint resumes the
// worker's open session all the same).
//
// The token stays in the form field; it goes into sessionStorage only when "remember for this
// tab" is ticked. Everything shown is text (textContent), never HTML.
//
// main.js calls showPublish(container, report, sources, reference) once an inspection finished.

import { t } from "./i18n.js";
import { h } from "./dom.js";

const TOKEN_KEY = "lxdimg.publish.token";
const SESSION_PREFIX = "lxdimg.publish.session:";
const JOBS = 3;
const TRIES = 6;

/** The worker's limits, or null when the page is not served by a worker with upload sessions. */
const server = fetch(new URL("/api/version", location.origin), { cache: "no-store", credentials: "omit" })
  .then((r) => (r.ok ? r.json() : null))
  .then((v) => (v && Number.isSafeInteger(v.maxRequestBytes) && Number.isSafeInteger(v.partBytes) ? v : null))
  .catch(() => null);

/** What the test (and a curious person in the console) can see: the last run's counters. */
const state = (globalThis.lxdimgPublish = { sent: 0, resumedStored: 0, status: "idle", result: null });

function storage() {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null;
  }
}

/** The key an interrupted upload of these files is remembered under (this tab only). */
function sessionKey(files) {
  return SESSION_PREFIX + files.map((f) => `${f.file.name}\u0000${f.file.size}\u0000${f.file.lastModified}`).join("\u0001");
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class HttpFailure extends Error {
  constructor(status, body) {
    super(body?.error ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** A request with the bearer token, retried with backoff on network errors and 5xx answers. */
async function call(method, path, token, body, { json = true } = {}) {
  for (let attempt = 0; ; attempt++) {
    let resp;
    try {
      resp = await fetch(new URL(path, location.origin), {
        method,
        headers: {
          Authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "Content-Type": json ? "application/json" : "application/octet-stream" }),
        },
        body: json && body !== undefined ? JSON.stringify(body) : body,
        cache: "no-store",
        credentials: "omit",
      });
    } catch (e) {
      if (attempt + 1 >= TRIES) throw new Error(t("publish.error.network", { message: e?.message ?? String(e) }));
      await sleep(Math.min(500 * 2 ** attempt, 15000));
      continue;
    }
    if (resp.status >= 500 && attempt + 1 < TRIES) {
      await sleep(Math.min(500 * 2 ** attempt, 15000));
      continue;
    }
    const text = await resp.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = { error: text.trim() };
    }
    return { status: resp.status, data };
  }
}

/** The session's files from the Report and the dropped files: role, File, in validation order. */
function uploadFiles(report, sources) {
  const files = sources.map((s) => s.file);
  const roleOf = (f) => (f.role === "rootfs" && report.type === "virtual-machine" ? "rootfs.img" : f.role);
  const out = [];
  for (const rf of report.files) {
    const i = files.findIndex((f) => f && f.name === (rf.name ?? f.name) && f.size === rf.size);
    if (i < 0) return null;
    out.push({ role: roleOf(rf), file: files[i] });
    files[i] = null;
  }
  return out;
}

function partCount(size, part) {
  return Math.max(1, Math.ceil(size / part));
}

/** The parts the session still needs: [{file index, part, start, end}]. */
function missingParts(session, files) {
  const out = [];
  for (const [i, f] of files.entries()) {
    const sf = session.files.find((x) => x.role === f.role);
    const count = partCount(f.file.size, session.partBytes);
    if (!sf || sf.size !== f.file.size || sf.parts !== count) throw new Error(t("publish.error.mismatch"));
    const stored = new Set(sf.stored);
    for (let p = 1; p <= count; p++) {
      if (!stored.has(p)) out.push({ i, part: p, start: (p - 1) * session.partBytes, end: Math.min(p * session.partBytes, f.file.size) });
    }
  }
  return out;
}

function storedBytes(session, files) {
  let n = 0;
  for (const f of files) {
    const sf = session.files.find((x) => x.role === f.role);
    for (const p of sf?.stored ?? []) n += Math.min(p * session.partBytes, f.file.size) - (p - 1) * session.partBytes;
  }
  return n;
}

function remoteCommand(origin) {
  const name = new URL(origin).hostname.replace(/[^A-Za-z0-9-]/g, "-").replace(/^-+|-+$/g, "") || "lxdimg";
  return `lxc remote add ${name} ${origin} --protocol simplestreams --public`;
}

/** The reason a Report gives for refusing (LXD's words, or why lxdimg cannot judge). */
function refusal(report, reference) {
  const v = report?.verdicts?.[reference];
  return v?.error ?? v?.reason ?? report?.error ?? "";
}

let current = null; // the panel's run: {cancelled}

/**
 * Shows (or hides) the panel for a finished inspection: only for an image the reference target
 * accepts, read from dropped or picked files, on a page served by a worker with upload sessions.
 */
export async function showPublish(container, report, sources, reference) {
  if (current) current.cancelled = true;
  current = null;
  shown = null;
  container.hidden = true;
  container.replaceChildren();
  const accepted = report?.verdicts?.[reference]?.accepted === true;
  const bomb = (report?.findings ?? []).some((f) => f.code === "decompression-bomb" && f.severity === "error");
  if (!accepted || bomb || !report.fingerprint || !sources.every((s) => s.kind === "file")) return;
  const info = await server;
  if (!info) return;
  const files = uploadFiles(report, sources);
  if (!files) return;
  shown = { container, report, files, reference };
  render(container, report, files, reference);
}

// A language switch re-renders the panel (not while it uploads: the run keeps its elements).
let shown = null;
document.addEventListener("langchange", () => {
  if (!shown || (current && !current.cancelled && ["starting", "sending", "validating"].includes(state.status))) return;
  const { container, report, files, reference } = shown;
  container.replaceChildren();
  render(container, report, files, reference);
});

function render(container, report, files, reference) {
  const store = storage();
  const key = sessionKey(files);
  const remembered = store?.getItem(TOKEN_KEY) ?? "";
  const token = h("input", { type: "password", id: "publish-token", autocomplete: "off", spellcheck: "false", required: true });
  token.value = remembered;
  const remember = h("input", { type: "checkbox", id: "publish-remember" });
  remember.checked = remembered !== "";
  const aliases = h("input", { type: "text", id: "publish-aliases", spellcheck: "false", placeholder: t("publish.aliases.placeholder") });
  const button = h("button", { type: "submit", id: "publish-go" }, t("publish.go"));
  const bar = h("progress", { id: "publish-bar", max: "1", value: "0", "aria-labelledby": "publish-title", hidden: true });
  const status = h("p", { id: "publish-status", role: "status", "aria-live": "polite" });
  const out = h("div", { id: "publish-result", hidden: true });
  const resume = store?.getItem(key) ? h("p", { class: "hint", id: "publish-resume" }, t("publish.resume.note")) : null;

  remember.addEventListener("change", () => {
    if (!store) return;
    if (remember.checked && token.value) store.setItem(TOKEN_KEY, token.value);
    else store.removeItem(TOKEN_KEY);
  });
  token.addEventListener("input", () => {
    if (store && remember.checked) store.setItem(TOKEN_KEY, token.value);
  });

  const form = h(
    "form",
    { id: "publish-form", novalidate: true },
    h("div", { class: "row" }, h("label", { for: "publish-token" }, t("publish.token")), token),
    h("div", { class: "row" }, remember, h("label", { for: "publish-remember" }, t("publish.remember"))),
    h("div", { class: "row" }, h("label", { for: "publish-aliases" }, t("publish.aliases")), aliases),
    h("p", { class: "hint" }, t("publish.aliases.hint")),
    resume,
    h("div", { class: "row" }, button),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!token.value) {
      status.className = "error";
      status.textContent = t("publish.error.noToken");
      token.focus();
      return;
    }
    if (store && remember.checked) store.setItem(TOKEN_KEY, token.value);
    const names = aliases.value.split(/[\s,]+/).filter(Boolean);
    const run = (current = { cancelled: false });
    button.disabled = true;
    out.hidden = true;
    status.className = "";
    publish(run, { token: token.value, aliases: names, files, report, reference, key, bar, status, out })
      .catch((err) => {
        if (run.cancelled) return;
        state.status = "error";
        status.className = "error";
        status.textContent = err?.message ?? String(err);
      })
      .finally(() => {
        button.disabled = false;
      });
  });

  // With the token at hand, say at once how much of the interrupted upload the server holds.
  if (resume && remembered) {
    call("GET", `/api/uploads/${store.getItem(key)}`, remembered).then(({ status: code, data }) => {
      if (code !== 200 || data?.status !== "open" || !Array.isArray(data.files)) return;
      const stored = data.files.reduce((n, f) => n + (f.stored?.length ?? 0), 0);
      const parts = data.files.reduce((n, f) => n + (f.parts ?? 0), 0);
      resume.textContent = t("publish.resume.parts", { stored, parts });
    }, () => {});
  }

  const total = files.reduce((n, f) => n + f.file.size, 0);
  container.append(
    h("h2", { id: "publish-title" }, t("publish.title")),
    h("p", { class: "hint" }, t("publish.intro", { size: total.toLocaleString(), origin: location.origin })),
    form,
    bar,
    status,
    out,
  );
  container.hidden = false;
}

async function publish(run, { token, aliases, files, report, reference, key, bar, status, out }) {
  const store = storage();
  const total = files.reduce((n, f) => n + f.file.size, 0);
  state.sent = 0;
  state.resumedStored = 0;
  state.result = null;
  state.status = "starting";
  status.textContent = t("publish.status.starting");

  // 1. The session: the one this tab remembers for these files, if it is still open; else create
  //    (the worker resumes an open session of the same fingerprint, or says the image exists).
  let session = null;
  const known = store?.getItem(key);
  if (known && /^[0-9a-f-]{36}$/.test(known)) {
    const { status: code, data } = await call("GET", `/api/uploads/${known}`, token);
    if (code === 422) return rejected(data?.report ?? data, reference, status, store, key);
    if (code === 200 && data?.status === "complete" && data.image) return done(data.image, status, out, bar, store, key);
    if (code === 200 && data?.status === "open") session = { ...data, resumed: true };
    else if (code === 401) throw new Error(t("publish.error.http", { status: code, message: data?.error ?? "" }));
    else store?.removeItem(key);
  }
  if (!session) {
    const body = {
      files: files.map((f) => ({ role: f.role, size: f.file.size, name: f.file.name })),
      aliases,
      fingerprint: report.fingerprint,
    };
    const { status: code, data } = await call("POST", "/api/uploads", token, body);
    if (code === 200 && data?.status === "exists") return done(data.image, status, out, bar, store, key);
    if (code !== 200 && code !== 201) throw new Error(t("publish.error.http", { status: code, message: data?.error ?? "" }));
    session = data;
  }
  if (run.cancelled) return;
  store?.setItem(key, session.id);
  state.session = session.id;

  // 2. The parts it does not hold yet, JOBS at a time.
  for (let round = 0; round < 3; round++) {
    const todo = missingParts(session, files);
    const allParts = files.reduce((n, f) => n + partCount(f.file.size, session.partBytes), 0);
    let have = storedBytes(session, files);
    let partsDone = allParts - todo.length;
    if (session.resumed && round === 0) state.resumedStored = partsDone;
    bar.hidden = false;
    bar.max = total;
    bar.value = have;
    const show = () => {
      status.textContent = t(session.resumed && round === 0 ? "publish.status.resumed" : "publish.status.sending", {
        done: partsDone,
        parts: allParts,
        stored: state.resumedStored,
        percent: Math.floor((100 * have) / total),
      });
    };
    state.status = "sending";
    show();
    const queue = [...todo];
    const worker = async () => {
      for (let p; (p = queue.shift()); ) {
        if (run.cancelled) return;
        const f = files[p.i];
        const { status: code, data } = await call("PUT", `/api/uploads/${session.id}/${f.role}/${p.part}`, token, f.file.slice(p.start, p.end), { json: false });
        if (code !== 200) {
          queue.length = 0;
          throw new Error(t("publish.error.part", { role: f.role, part: p.part, status: code, message: data?.error ?? "" }));
        }
        state.sent++;
        partsDone++;
        have += p.end - p.start;
        bar.value = have;
        show();
      }
    };
    await Promise.all(Array.from({ length: Math.min(JOBS, todo.length) }, worker));
    if (run.cancelled) return;

    // 3. Complete: the worker validates the assembled files with the core.
    state.status = "validating";
    status.textContent = t("publish.status.validating");
    for (;;) {
      const { status: code, data } = await call("POST", `/api/uploads/${session.id}/complete`, token, {});
      if (code === 200 || code === 201) return done(data, status, out, bar, store, key);
      if (code === 422) return rejected(data?.report ?? data, reference, status, store, key);
      if (code === 202) {
        await sleep(2000);
        continue;
      }
      if (code === 409 && data?.missing) {
        for (const sf of session.files) {
          const miss = new Set(data.missing[sf.role] ?? []);
          sf.stored = Array.from({ length: sf.parts }, (_, k) => k + 1).filter((p) => !miss.has(p));
        }
        session.resumed = false;
        break; // send those again
      }
      throw new Error(t("publish.error.http", { status: code, message: data?.error ?? "" }));
    }
  }
  throw new Error(t("publish.error.incomplete"));
}

function rejected(report, reference, status, store, key) {
  store?.removeItem(key);
  state.status = "rejected";
  status.className = "error";
  status.textContent = t("publish.rejected", { reason: refusal(report, reference) });
}

function done(image, status, out, bar, store, key) {
  store?.removeItem(key);
  document.getElementById("publish-resume")?.remove();
  state.status = "done";
  state.result = image;
  bar.value = bar.max;
  status.className = "ok";
  status.textContent = t(image.created === false ? "publish.done.exists" : "publish.done", { fingerprint: image.fingerprint ?? "" });
  const origin = image.url ? new URL(image.url).origin : location.origin;
  const line = (id, label, text) =>
    h("div", {}, h("p", { class: "hint" }, label),
      h("div", { class: "cmd" }, h("code", { id, class: "long" }, text), " ",
        h("button", { type: "button", class: "small", onclick: () => navigator.clipboard?.writeText(text).catch(() => {}) }, t("publish.copy"))));
  out.replaceChildren(
    line("publish-import", t("publish.import"), image.import ?? ""),
    line("publish-remote", t("publish.remote"), remoteCommand(origin)),
  );
  out.hidden = false;
}
