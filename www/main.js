// The page: drop zone, file picker, URL box, progress, and the rendering of the Report.
// It never touches the wasm itself: worker.js reads the files and runs the core (see its header
// for the messages). Cancel terminates the worker.
//
// Everything the Report holds comes from a stranger's image: it only ever reaches the DOM as text
// (`h()` and `shown()`: text nodes, never HTML), with control characters made visible. The
// Content-Security-Policy (www/csp.js) forbids inline script and eval, and its Trusted Types rule
// makes any HTML or script sink throw; the only script URLs are this page's own two workers.

import { t, tNodes } from "./i18n.js";
import { h } from "./dom.js";
import { lxdErrorKey } from "./lxd-errors.js";
import { templatePreview } from "./render.js";
import { showPublish } from "./publish.js";
import { initMake } from "./make.js";

const $ = (id) => document.getElementById(id);

// From the core, with worker.js's "ready" message: the verdict targets in the Report's order
// (`[{key, label}]`, the rows of the verdict table) and the key of the reference target (the one
// the banner and the early verdict speak for, LXD 5.0).
let targets = [];
let reference = null;
/** Finding codes after which `lxc init` works but the instance fails at its first start (from the core). */
let firstStart = [];

/** The reference target's name for sentences: its label without the parenthesis ("LXD 5.0"). */
function referenceName() {
  const t = targets.find((x) => x.key === reference);
  return t ? t.label.replace(/\s*\(.*\)$/, "") : reference;
}

// The Trusted Types policy for the page's own worker.js and sw.js (www/trusted.js).
import { scriptURL } from "./trusted.js";

/**
 * The control characters (C0, DEL, C1, bidi formatting) as a global RegExp: the core's set
 * (`controlCharacters()`), from worker.js's "ready" message, which comes before any Report.
 */
let controls = null;

/** A control character as the CLI prints it: `\t`, `\n`, `\r`, `\0`, else `\u{1b}`. */
function escapedControl(c) {
  return { "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0" }[c] ?? `\\u{${c.codePointAt(0).toString(16)}}`;
}

/**
 * Untrusted text (from the image, a file name, a server) as DOM nodes: text nodes, with each
 * control character shown as its escape in a marked span. `keep`: control characters kept as
 * they are (the line breaks and tabs of template text).
 */
function shown(s, keep = "") {
  const text = String(s ?? "");
  const frag = document.createDocumentFragment();
  let at = 0;
  for (const m of controls ? text.matchAll(controls) : []) {
    if (keep.includes(m[0])) continue;
    const code = m[0].codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
    frag.append(text.slice(at, m.index), h("span", { class: "ctl", title: t("page.ctl.title", { code }) }, escapedControl(m[0])));
    at = m.index + m[0].length;
  }
  frag.append(text.slice(at));
  return frag;
}

/** Untrusted text as a string for attributes and file names: control characters escaped. */
function plain(s) {
  const text = String(s ?? "");
  return controls ? text.replace(controls, escapedControl) : text;
}

function bytes(n) {
  if (n === null || n === undefined) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${units[i]}`;
}

function duration(s) {
  if (!isFinite(s)) return "?";
  if (s < 1) return t("page.duration.lessThanSecond");
  if (s < 90) return t("page.duration.seconds", { s: Math.round(s) });
  return t("page.duration.minutes", { m: Math.floor(s / 60), s: Math.round(s % 60) });
}

/** An inline code element. */
const code = (...c) => h("code", {}, ...c);

/**
 * An LXD/Incus error text, word for word, and beside it the explanation in the page's language
 * (www/lxd-errors.js), if one is known.
 */
function lxdError(text, wrap = (x) => h("code", {}, x)) {
  const key = lxdErrorKey(text);
  return [wrap(shown(text)), key ? h("span", { class: "lxd-explain" }, " ", t("page.lxdExplain", { explain: t(key) })) : null];
}

/** A finding's translated title (catalogue `finding.CODE.title`), or its code when unknown. */
function findingTitle(c) {
  const key = `finding.${c}.title`;
  const title = t(key);
  return title === key ? t("page.findings.unknownCode", { code: c }) : title;
}

/** A finding's translated explanation (`finding.CODE.explain`), or null when unknown. */
function findingExplain(c) {
  const key = `finding.${c}.explain`;
  const text = t(key);
  return text === key ? null : text;
}

// ---- the worker -------------------------------------------------------------------------------

let worker = null;
let job = null; // {id, names, total, t0, done, speed, lastT, lastDone}
let nextId = 1;
let version = "";

function startWorker() {
  worker = new Worker(scriptURL("./worker.js"), { type: "module" });
  worker.onmessage = (e) => onWorkerMessage(e.data);
  worker.onerror = (e) => {
    e.preventDefault?.();
    fail({ key: "page.error.workerFailed", params: { message: e.message || t("page.error.workerNotLoaded") } });
  };
}

function onWorkerMessage(m) {
  if (m.type === "ready") {
    version = m.version;
    targets = m.targets;
    reference = m.reference;
    firstStart = m.firstStart ?? [];
    controls = new RegExp(`[${m.controls}]`, "gu");
    $("version").textContent = m.version;
    return;
  }
  if (m.type === "error" && m.id === null) return fail(m); // the worker could not start
  if (!job || m.id !== job.id) return;
  switch (m.type) {
    case "start":
      job.names = m.names;
      job.command = m.command;
      job.total = m.total;
      job.split = m.split;
      $("progress-name").replaceChildren(...joined(m.names.map((n) => shown(n)), " + "));
      break;
    case "progress":
      progress(m.done, m.total);
      break;
    case "verdict":
      earlyVerdict(m.verdict);
      break;
    case "done":
      finished(m);
      break;
    case "error":
      fail(m);
      break;
  }
}

function inspect(sources) {
  if (job) cancel(false);
  hideError();
  $("copied").textContent = "";
  $("result").hidden = true;
  $("early").hidden = true;
  $("early").replaceChildren();
  $("progress").hidden = false;
  $("bar").value = 0;
  $("bar").removeAttribute("max");
  $("progress-text").textContent = t("page.progress.starting");
  $("progress-name").replaceChildren(...joined(sources.map((s) => shown(s.kind === "file" ? s.file.name : s.url)), " + "));
  job = { id: nextId++, t0: performance.now(), done: 0, total: null, speed: 0, lastT: performance.now(), lastDone: 0, sources };
  document.body.dataset.state = "reading";
  window.lxdimg.longTasks = [];
  worker.postMessage({ type: "inspect", id: job.id, sources, now: Math.floor(Date.now() / 1000) });
  $("cancel").focus();
}

function cancel(show = true) {
  worker.terminate();
  startWorker();
  job = null;
  $("progress").hidden = true;
  if (show) {
    const early = $("early");
    early.replaceChildren(h("p", { class: "notice", id: "cancelled" }, t("page.cancelled")));
    early.hidden = false;
    document.body.dataset.state = "cancelled";
    $("picker").focus();
  }
}

function progress(done, total) {
  const now = performance.now();
  job.done = done;
  job.total = total;
  const dt = (now - job.lastT) / 1000;
  if (dt > 0.05) {
    const inst = (done - job.lastDone) / dt;
    job.speed = job.speed ? 0.7 * job.speed + 0.3 * inst : inst;
    job.lastT = now;
    job.lastDone = done;
  }
  progressText();
  if (total) {
    $("bar").max = total;
    $("bar").value = done;
  }
}

/** The progress line (bytes read, speed, time left) in the page's language. */
function progressText() {
  if (!job || !job.done) return;
  const { done, total } = job;
  const parts = [total ? t("page.progress.of", { done: bytes(done), total: bytes(total) }) : `${bytes(done)}`];
  if (job.speed) parts.push(t("page.progress.speed", { speed: bytes(job.speed) }));
  if (total && job.speed) parts.push(t("page.progress.left", { time: duration((total - done) / job.speed) }));
  $("progress-text").textContent = parts.join(" · ");
}

/** A verdict's class: `accepted` is true, false, or null when lxdimg cannot judge (see `reason`). */
function verdictClass(v) {
  return v.accepted === true ? "ok" : v.accepted === false ? "bad" : "unknown";
}

/**
 * The reference target's verdict as a sentence. LXD's error is quoted word for word; the
 * explanation beside it is in the page's language.
 */
function verdictLine(v) {
  const mark = (m) => h("span", { "aria-hidden": "true" }, m);
  const target = referenceName();
  if (v.accepted === true) return h("p", { class: "ok" }, mark("✓ "), t("page.verdict.accept", { target }));
  if (v.accepted === false) {
    const key = lxdErrorKey(v.error);
    return [
      h("p", { class: "bad" }, mark("✗ "), tNodes("page.verdict.refuse", { target, error: h("q", {}, "Error: ", shown(v.error)) })),
      key ? h("p", { class: "hint verdict-explain" }, t("page.verdict.refuseExplain", { explain: t(key) })) : null,
    ];
  }
  return h("p", { class: "unknown" }, mark("? "), tNodes("page.verdict.unknown", { reason: shown(v.reason) }));
}

/** What follows the import for the reference target: `lxc init`, then the first start. */
function initLine(v, r) {
  if (v.accepted !== true) return null;
  const c = v.creatable;
  const init = code("lxc init");
  const breaks = r.findings.find((f) => firstStart.includes(f.code));
  if (c.ok === false) {
    return h("p", { class: "bad", id: "init-line" }, tNodes("page.init.fail", { init, launch: code("lxc launch"), error: code(shown(c.error)) }),
      lxdErrorKey(c.error) ? h("span", { class: "lxd-explain" }, " ", t("page.lxdExplain", { explain: t(lxdErrorKey(c.error)) })) : null);
  }
  if (c.ok === null) return h("p", { class: "hint", id: "init-line" }, tNodes("page.init.unknown", { init, reason: shown(c.error) }));
  if (breaks) {
    return h("p", { class: "bad", id: "init-line" },
      tNodes("page.init.breaks", { init, start: code("lxc start"), launch: code("lxc launch"), message: shown(breaks.message) }),
      " ", h("span", { class: "lxd-explain" }, findingTitle(breaks.code)));
  }
  return h("p", { class: "ok", id: "init-line" }, tNodes("page.init.ok", { init }));
}

function earlyVerdict(v) {
  const early = $("early");
  shownEarly = v;
  early.replaceChildren(
    h("div", { class: `banner ${verdictClass(v)}`, id: "early-verdict" }, verdictLine(v),
      h("p", { class: "hint" }, t("page.verdict.early"))),
  );
  early.hidden = false;
}

/** What the page shows now, kept so a language switch re-renders it (nothing is re-read). */
let shownError = null;
let shownEarly = null;

/** The text of an error: `{key, params}` (translated) or `{message}` / a string (shown as is). */
function errorText(e) {
  if (typeof e === "string") return e;
  if (e.key) return t(e.key, e.params ?? {});
  return e.message;
}

/** Shows an error: a string, `{key, params}`, or a worker message `{key?, params?, message}`. */
function fail(err) {
  if (job) {
    worker.terminate();
    startWorker();
  }
  job = null;
  $("progress").hidden = true;
  $("early").hidden = true;
  shownError = err;
  const e = $("error");
  e.replaceChildren(shown(errorText(err)));
  e.hidden = false;
  document.body.dataset.state = "error";
}

function hideError() {
  shownError = null;
  shownEarly = null;
  $("error").hidden = true;
  $("error").textContent = "";
}

// ---- rendering the report ---------------------------------------------------------------------

let lastReport = null;
let lastFiles = null; // the dropped files of the last inspection, for "Fix it" (www/make.js)
let maker = null; // initMake's handle
let lastRender = null; // [report, command, done message]: re-rendered on a language switch

function finished(m) {
  const command = job.command;
  showPublish($("publish"), m.report, job.sources, reference);
  lastFiles = job.sources.every((s) => s.kind === "file") ? job.sources.map((s) => s.file) : null;
  job = null;
  lastReport = m.report;
  window.lxdimg.lastReport = m.report;
  window.lxdimg.lastRun = { ms: m.ms, bytes: m.bytes, memory: m.memory };
  $("progress").hidden = true;
  $("early").hidden = true;
  shownEarly = null;
  lastRender = [m.report, command, m];
  render(m.report, command, m);
  $("result").hidden = false;
  document.body.dataset.state = "done";
  $("result-title").setAttribute("tabindex", "-1");
  $("result-title").focus();
}

function render(r, command, m) {
  const ref = r.verdicts[reference];
  const type = { container: t("page.summary.container"), "virtual-machine": t("page.summary.virtualMachine") }[r.type] ?? r.type;
  const summary = [r.format === "split" ? t("page.summary.split") : t("page.summary.unified"), type, r.architecture].filter(Boolean).join(" · ");
  $("verdict-banner").className = `banner ${verdictClass(ref)}`;
  $("verdict-banner").replaceChildren(...[verdictLine(ref), initLine(ref, r), h("p", { class: "hint" }, summary)].flat().filter(Boolean));

  $("verdicts").tBodies[0].replaceChildren(
    ...targets.map(({ key, label }) => {
      const v = r.verdicts[key];
      return h(
        "tr",
        { class: verdictClass(v) },
        h("th", { scope: "row" }, label),
        h("td", {}, v.accepted === true ? t("page.verdicts.accepted") : v.accepted === false ? t("page.verdicts.refused") : t("page.verdicts.cannotJudge")),
        // `error` is only ever LXD's or Incus's own words (with an explanation in the page's
        // language beside them); `reason` is lxdimg's.
        h("td", {}, v.error ? lxdError(v.error, (x) => code("Error: ", x)) : v.accepted === null ? tNodes("page.verdicts.reason", { reason: shown(v.reason) }) : "—"),
        h("td", { class: "launch" }, launchText(v.creatable, r)),
      );
    }),
  );

  $("fp").textContent = r.fingerprint ?? t("page.fp.notComputed");
  $("fp-short").textContent = r.short_fingerprint ?? "";
  // Quoted by the core (worker.js), as the CLI quotes it: no raw control character.
  $("import-cmd").textContent = command;
  $("import-note").textContent =
    ref.accepted === true
      ? t("page.import.ok")
      : ref.accepted === false
        ? t("page.import.fail", { target: referenceName() })
        : t("page.import.unknown", { target: referenceName() });

  $("info").replaceChildren(...infoLines(r).flatMap((line, i) => (i ? ["\n", ...line] : line)));

  const tb = $("templates").tBodies[0];
  // Template texts the reader opened stay open when the page re-renders (a language switch).
  const open = new Set([...tb.querySelectorAll("tr.tpl-text:not([hidden])")].map((x) => x.id));
  tb.replaceChildren();
  r.templates.forEach((tpl, i) => {
    const textId = `tpl-text-${i}`;
    const btn = tpl.text !== null
      ? h("button", { type: "button", class: "small", "aria-expanded": "false", "aria-controls": textId,
          "aria-label": t("page.templates.showLabel", { name: plain(tpl.template) }) }, t("page.templates.show"))
      : h("span", { class: "hint" }, "—");
    const row = h(
      "tr",
      { class: tpl.present ? "" : "bad" },
      h("td", {}, h("code", {}, shown(tpl.path))),
      h("td", {}, tpl.when.length ? joined(tpl.when.map((w) => shown(w)), ", ") : "—"),
      h("td", {}, h("code", {}, shown(tpl.template))),
      h("td", {}, tpl.present ? t("page.templates.presentYes") : t("page.templates.presentNo")),
      h("td", {}, tpl.create_only ? t("page.yes") : t("page.no")),
      h("td", {}, Object.entries(tpl.properties).map(([k, v]) => h("div", {}, h("code", {}, shown(k), "=", shown(v))))),
      h("td", {}, btn),
    );
    const textRow = h(
      "tr",
      { class: "tpl-text", id: textId, hidden: true },
      h("td", { colspan: "7" },
        h("pre", { tabindex: "0", "aria-label": t("page.templates.textLabel", { name: plain(tpl.template) }) }, shown(tpl.text, "\n\t")),
        tpl.text_truncated ? h("p", { class: "hint" }, t("page.templates.truncated", { size: bytes(tpl.size) })) : null),
    );
    if (tpl.text !== null) {
      const toggle = (show) => {
        textRow.hidden = !show;
        btn.setAttribute("aria-expanded", String(show));
        btn.textContent = show ? t("page.templates.hide") : t("page.templates.show");
      };
      btn.addEventListener("click", () => toggle(textRow.hidden));
      if (open.has(textId)) toggle(true);
    }
    tb.append(row, textRow);
  });
  $("no-templates").hidden = r.templates.length > 0;
  $("templates").closest(".table-wrap").hidden = r.templates.length === 0;
  templatePreview(r);

  // Each finding: its title and explanation in the page's language (catalogue
  // `finding.CODE.title`/`.explain`), and the core's message word for word.
  const f = $("findings");
  f.replaceChildren();
  for (const sev of ["error", "warning", "info"]) {
    const list = r.findings.filter((x) => x.severity === sev);
    if (!list.length) continue;
    const title = t(`page.findings.${sev}`, { n: list.length });
    f.append(
      h("section", { class: `findings ${sev}`, "aria-label": title },
        h("h3", {}, title),
        h("ul", {}, list.map((x) => h("li", { "data-code": x.code },
          h("div", { class: "finding-title" }, findingTitle(x.code)),
          h("div", { class: "finding-message" }, h("code", { class: "code" }, x.code), " ", shown(x.message),
            where(x).length ? h("span", { class: "where" }, " — ", joined(where(x), ", ")) : null),
          findingExplain(x.code) ? h("p", { class: "finding-explain" }, findingExplain(x.code)) : null)))),
    );
  }
  if (!r.findings.length) {
    f.append(ref.accepted === true ? h("p", { class: "ok" }, t("page.findings.none")) : h("p", {}, t("page.findings.noneOther")));
  }
  // A refused image, or one with errors or warnings: hand the same files to "Fix an image",
  // which lists the mechanical fixes (or says there are none) before anything is written.
  const fixable = ref.accepted === false || r.findings.some((x) => x.severity !== "info");
  if (fixable && lastFiles && maker) {
    const files = lastFiles;
    f.append(h("p", { class: "fix-offer" },
      h("button", { type: "button", id: "fix-offer", onclick: () => maker.fix(files) }, t("repair.offer")),
      " ", h("span", { class: "hint" }, t("repair.offerHint"))));
  }

  $("files").tBodies[0].replaceChildren(
    ...r.files.map((x) => h("tr", {},
      h("td", {}, x.role), h("td", {}, x.name === null ? "—" : shown(x.name)), h("td", {}, x.compression),
      h("td", {}, bytes(x.size)), h("td", {}, x.decoded_size === null ? "—" : bytes(x.decoded_size)),
      h("td", {}, h("code", { class: "long" }, x.sha256 ?? "—")))),
  );
  $("rootfs-summary").replaceChildren(...rootfsSummary(r));
  const rate = m.ms > 0 ? t("page.timing.rate", { speed: bytes(Math.round(m.bytes / (m.ms / 1000))) }) : "";
  const read = { bytes: bytes(m.bytes), seconds: (m.ms / 1000).toFixed(2), rate };
  $("timing").textContent = r.verdict_offset !== null
    ? t("page.timing.readVerdict", { ...read, target: referenceName(), offset: bytes(r.verdict_offset) })
    : t("page.timing.read", read);
}

/**
 * The `creatable` verdict: whether `lxc init` creates an instance from the imported image, and
 * whether that instance then fails at its first start (creating and starting are different).
 */
function launchText(c, r) {
  if (!c) return "—";
  const breaks = r.findings.find((f) => firstStart.includes(f.code));
  if (c.ok === true && breaks) {
    return h("span", { class: "bad-text" }, tNodes("page.launch.breaks", { message: shown(breaks.message) }));
  }
  if (c.ok === true) return t("page.launch.yes");
  if (c.ok === false) {
    const [err, explain] = lxdError(c.error ?? c.code);
    return [h("span", { class: "bad-text" }, tNodes("page.launch.no", { error: err })), explain];
  }
  const why = { "import-rejected": t("page.launch.notImported"), "import-not-judged": t("page.launch.notJudged") }[c.code];
  return h("span", { class: "hint", title: plain(c.error ?? "") },
    why ?? tNodes("page.launch.unknown", { reason: c.error ? shown(c.error) : t("page.launch.unknownReason") }));
}

/** Where a finding is: its file, tar entry and offset (nodes; the entry name is the image's). */
function where(x) {
  const w = [];
  if (x.file) w.push(t("page.findings.file", { file: x.file }));
  if (x.entry) w.push(h("span", {}, tNodes("page.findings.entry", { entry: shown(x.entry) })));
  if (x.offset !== null) w.push(t("page.findings.offset", { offset: x.offset }));
  return w;
}

/** The items with `sep` between them. */
function joined(items, sep) {
  return items.flatMap((x, i) => (i ? [sep, x] : [x]));
}

/** "2016-03-15T11:10:00Z" → "2016/03/15 11:10 UTC", as lxc image info prints times. */
function lxcTime(s) {
  const m = s && /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)/.exec(s);
  return m ? `${m[1]}/${m[2]}/${m[3]} ${m[4]}:${m[5]} UTC` : s ?? "?";
}

/** The lines of `lxc image info` for the image, each a list of nodes (image strings `shown`). */
function infoLines(r) {
  const size = r.files.reduce((n, f) => n + f.size, 0);
  const md = r.metadata;
  const lines = [
    [`Fingerprint: ${r.fingerprint ?? "?"}`],
    [`Size: ${(size / 1048576).toFixed(2)}MiB`],
    ["Architecture: ", r.architecture ?? (md ? [shown(md.architecture), t("page.info.archUnknown")] : "?")].flat(),
    [`Type: ${r.type ?? "?"}`],
    [`Public: no`],
    [`Timestamps:`],
    [`    Created: ${md ? lxcTime(md.created) : "?"}`],
    [`    Uploaded: ${t("page.info.whenImported")}`],
    [`    Expires: ${md ? (md.expiry_date ? lxcTime(md.expires) : "never") : "?"}`],
    [`    Last used: never`],
    [`Properties:`],
    ...Object.entries(md?.properties ?? {}).map(([k, v]) => ["    ", shown(k), ": ", shown(v)]),
  ];
  if (r.os_release?.pretty_name) lines.push(["Rootfs os-release: ", shown(r.os_release.pretty_name)]);
  return lines;
}

function rootfsSummary(r) {
  const x = r.rootfs;
  if (!x) return [];
  const parts = [tNodes("page.rootfs.format", { format: code(x.format) })];
  if (x.entries !== null) parts.push(t("page.rootfs.entries", { entries: x.entries, bytes: bytes(x.bytes) }));
  if (x.squashfs) {
    parts.push(t("page.rootfs.squashfs", { version: x.squashfs.version, compressor: x.squashfs.compressor, inodes: x.squashfs.inode_count }));
  }
  if (x.qcow2) parts.push(t("page.rootfs.qcow2", { version: x.qcow2.version, size: bytes(x.qcow2.virtual_size) }));
  if (r.os_release?.pretty_name) parts.push(h("span", { class: "from-image" }, shown(r.os_release.pretty_name)));
  return joined(parts, " · ");
}

// ---- input: drop, picker, URL --------------------------------------------------------------------

function fromFiles(list) {
  const files = [...list];
  if (!files.length) return fail({ key: "page.error.noFiles" });
  if (files.length > 2) return fail({ key: "page.error.tooManyFiles", params: { n: files.length } });
  inspect(files.map((file) => ({ kind: "file", file })));
}

let dragDepth = 0;
const overlay = () => $("drop-overlay");
const hasFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes("Files");
window.addEventListener("dragenter", (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  dragDepth++;
  overlay().hidden = false;
});
window.addEventListener("dragover", (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  e.dataTransfer.dropEffect = "copy";
});
window.addEventListener("dragleave", () => {
  if (--dragDepth <= 0) {
    dragDepth = 0;
    overlay().hidden = true;
  }
});
window.addEventListener("drop", (e) => {
  e.preventDefault();
  dragDepth = 0;
  overlay().hidden = true;
  if (e.dataTransfer) fromFiles(e.dataTransfer.files);
});

function setup() {
  window.lxdimg = { lastReport: null, lastRun: null, longTasks: [] };
  document.body.dataset.state = "idle";
  startWorker();
  $("picker").addEventListener("change", (e) => {
    const files = e.target.files;
    if (files.length) fromFiles(files);
    e.target.value = "";
  });
  $("url-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const urls = [$("url").value.trim(), $("url2").value.trim()].filter(Boolean);
    if (!urls.length) return fail({ key: "page.error.noUrl" });
    for (const u of urls) {
      let p;
      try {
        p = new URL(u, location.href);
      } catch {
        return fail({ key: "page.error.notUrl", params: { url: u } });
      }
      if (!/^https?:$/.test(p.protocol)) return fail({ key: "page.error.notHttp", params: { url: u } });
    }
    inspect(urls.map((u) => ({ kind: "url", url: new URL(u, location.href).href })));
  });
  $("cancel").addEventListener("click", () => cancel(true));
  maker = initMake($("make"), () => new Worker(scriptURL("./worker.js"), { type: "module" }));
  document.addEventListener("langchange", relabel);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && job) cancel(true);
  });
  for (const b of document.querySelectorAll("button.copy")) {
    b.addEventListener("click", () => copy($(b.dataset.copy).textContent));
  }
  $("download").addEventListener("click", () => {
    if (!lastReport) return;
    const blob = new Blob([JSON.stringify(lastReport, null, 2) + "\n"], { type: "application/json" });
    const name = (lastReport.files[0]?.name ?? "image").replace(/[\\/]/g, "_");
    const safe = controls ? name.replace(controls, "_") : name;
    const a = h("a", { href: URL.createObjectURL(blob), download: `${safe}.lxdimg.json` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  });
  if ("PerformanceObserver" in window && PerformanceObserver.supportedEntryTypes?.includes("longtask")) {
    new PerformanceObserver((list) => {
      for (const t of list.getEntries()) window.lxdimg.longTasks.push({ start: t.startTime, ms: t.duration });
    }).observe({ type: "longtask" });
  }
  if ("serviceWorker" in navigator && location.protocol !== "file:") {
    navigator.serviceWorker.register(scriptURL("./sw.js")).catch(() => {});
  }
}

/**
 * After a language switch (www/i18n.js has already translated the static elements): the parts
 * this file wrote are written again from what the page holds — the Report, the error, the early
 * verdict, the progress — without reading anything again.
 */
function relabel() {
  if (shownError && !$("error").hidden) $("error").replaceChildren(shown(errorText(shownError)));
  if (job) {
    progressText();
    if (!job.done) $("progress-text").textContent = t("page.progress.starting");
    if (shownEarly && !$("early").hidden) earlyVerdict(shownEarly);
  }
  const cancelled = $("cancelled");
  if (cancelled) cancelled.textContent = t("page.cancelled");
  $("copied").textContent = "";
  if (lastRender && !$("result").hidden) render(...lastRender);
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const t = h("textarea", { class: "sr" });
    t.value = text;
    document.body.append(t);
    t.select();
    document.execCommand("copy");
    t.remove();
  }
  $("copied").textContent = t("page.copy.done", { text: text.length > 40 ? text.slice(0, 40) + "…" : text });
}

setup();
