// The page: drop zone, file picker, URL box, progress, and the rendering of the Report.
// It never touches the wasm itself: worker.js reads the files and runs the core (see its header
// for the messages). Cancel terminates the worker.
//
// Everything the Report holds comes from a stranger's image: it only ever reaches the DOM as text
// (`h()` and `shown()`: text nodes, never HTML), with control characters made visible. The
// Content-Security-Policy (www/csp.js) forbids inline script and eval, and its Trusted Types rule
// makes any HTML or script sink throw; the only script URLs are this page's own two workers.

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
    frag.append(text.slice(at, m.index), h("span", { class: "ctl", title: `control character U+${code}` }, escapedControl(m[0])));
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

/** h("p", {class: "x"}, "text", child…): a DOM element; text is never parsed as HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
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
  if (s < 1) return "< 1 s";
  if (s < 90) return `${Math.round(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
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
    fail(`The inspection worker failed: ${e.message || "it could not be loaded"}`);
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
  if (m.type === "error" && m.id === null) return fail(m.message); // the worker could not start
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
      fail(m.message);
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
  $("progress-text").textContent = "Starting…";
  $("progress-name").replaceChildren(...joined(sources.map((s) => shown(s.kind === "file" ? s.file.name : s.url)), " + "));
  job = { id: nextId++, t0: performance.now(), done: 0, total: null, speed: 0, lastT: performance.now(), lastDone: 0 };
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
    early.replaceChildren(h("p", { class: "notice" }, "Cancelled — nothing more is read. Choose another image."));
    early.hidden = false;
    document.body.dataset.state = "cancelled";
    $("picker").focus();
  }
}

function progress(done, total) {
  const t = performance.now();
  job.done = done;
  const dt = (t - job.lastT) / 1000;
  if (dt > 0.05) {
    const inst = (done - job.lastDone) / dt;
    job.speed = job.speed ? 0.7 * job.speed + 0.3 * inst : inst;
    job.lastT = t;
    job.lastDone = done;
  }
  const parts = [total ? `${bytes(done)} of ${bytes(total)}` : `${bytes(done)}`];
  if (job.speed) parts.push(`${bytes(job.speed)}/s`);
  if (total && job.speed) parts.push(`about ${duration((total - done) / job.speed)} left`);
  $("progress-text").textContent = parts.join(" · ");
  if (total) {
    $("bar").max = total;
    $("bar").value = done;
  }
}

/** A verdict's class: `accepted` is true, false, or null when lxdimg cannot judge (see `reason`). */
function verdictClass(v) {
  return v.accepted === true ? "ok" : v.accepted === false ? "bad" : "unknown";
}

/** The reference target's verdict as a sentence. */
function verdictLine(v) {
  const mark = (m) => h("span", { "aria-hidden": "true" }, m);
  if (v.accepted === true) return h("p", { class: "ok" }, mark("✓ "), `${referenceName()} will accept this image.`);
  if (v.accepted === false) {
    return h("p", { class: "bad" }, mark("✗ "), `${referenceName()} will refuse this image: `, h("q", {}, "Error: ", shown(v.error)));
  }
  return h("p", { class: "unknown" }, mark("? "), "lxdimg cannot judge: ", shown(v.reason));
}

/** What follows the import for the reference target: `lxc init`, then the first start. */
function initLine(v, r) {
  if (v.accepted !== true) return null;
  const c = v.creatable;
  const init = h("code", {}, "lxc init");
  const breaks = r.findings.find((f) => firstStart.includes(f.code));
  if (c.ok === false) return h("p", { class: "bad", id: "init-line" }, init, " (and ", h("code", {}, "lxc launch"), ") will fail: ", h("code", {}, shown(c.error)));
  if (c.ok === null) return h("p", { class: "hint", id: "init-line" }, "Whether ", init, " can create an instance is not known: ", shown(c.error));
  if (breaks) {
    return h("p", { class: "bad", id: "init-line" }, init, " creates an instance, but it fails at first start (",
      h("code", {}, "lxc start"), ", ", h("code", {}, "lxc launch"), "): ", shown(breaks.message));
  }
  return h("p", { class: "ok", id: "init-line" }, init, " creates an instance from it (starting it is not checked here).");
}

function earlyVerdict(v) {
  const early = $("early");
  early.replaceChildren(
    h("div", { class: `banner ${verdictClass(v)}`, id: "early-verdict" }, verdictLine(v),
      h("p", { class: "hint" }, "Known from the first bytes; still reading the rest for the fingerprint and the other versions…")),
  );
  early.hidden = false;
}

function fail(message) {
  if (job) {
    worker.terminate();
    startWorker();
  }
  job = null;
  $("progress").hidden = true;
  $("early").hidden = true;
  const e = $("error");
  e.replaceChildren(shown(message));
  e.hidden = false;
  document.body.dataset.state = "error";
}

function hideError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

// ---- rendering the report ---------------------------------------------------------------------

let lastReport = null;

function finished(m) {
  const command = job.command;
  job = null;
  lastReport = m.report;
  window.lxdimg.lastReport = m.report;
  window.lxdimg.lastRun = { ms: m.ms, bytes: m.bytes, memory: m.memory };
  $("progress").hidden = true;
  $("early").hidden = true;
  render(m.report, command, m);
  $("result").hidden = false;
  document.body.dataset.state = "done";
  $("result-title").setAttribute("tabindex", "-1");
  $("result-title").focus();
}

function render(r, command, m) {
  const ref = r.verdicts[reference];
  const summary = [r.format === "split" ? "split image" : "unified image", r.type, r.architecture].filter(Boolean).join(" · ");
  $("verdict-banner").className = `banner ${verdictClass(ref)}`;
  $("verdict-banner").replaceChildren(verdictLine(ref), initLine(ref, r), h("p", { class: "hint" }, summary));

  $("verdicts").tBodies[0].replaceChildren(
    ...targets.map(({ key, label }) => {
      const v = r.verdicts[key];
      return h(
        "tr",
        { class: verdictClass(v) },
        h("th", { scope: "row" }, label),
        h("td", {}, v.accepted === true ? "✓ accepted" : v.accepted === false ? "✗ refused" : "? cannot judge"),
        // `error` is only ever LXD's or Incus's own words; `reason` is lxdimg's.
        h("td", {}, v.error ? h("code", {}, "Error: ", shown(v.error)) : v.accepted === null ? ["lxdimg cannot judge: ", shown(v.reason)] : "—"),
        h("td", { class: "launch" }, launchText(v.creatable, r)),
      );
    }),
  );

  $("fp").textContent = r.fingerprint ?? "(not computed)";
  $("fp-short").textContent = r.short_fingerprint ?? "";
  // Quoted by the core (worker.js), as the CLI quotes it: no raw control character.
  $("import-cmd").textContent = command;
  $("import-note").textContent =
    ref.accepted === true
      ? "Import it with (on the LXD host, from the folder that holds the file):"
      : ref.accepted === false
        ? `This command will fail on ${referenceName()} with the error above:`
        : `lxdimg cannot tell whether this command works on ${referenceName()} (see above):`;

  $("info").replaceChildren(...infoLines(r).flatMap((line, i) => (i ? ["\n", ...line] : line)));

  const tb = $("templates").tBodies[0];
  tb.replaceChildren();
  r.templates.forEach((t, i) => {
    const textId = `tpl-text-${i}`;
    const btn = t.text !== null
      ? h("button", { type: "button", class: "small", "aria-expanded": "false", "aria-controls": textId,
          "aria-label": `Show the text of ${plain(t.template)}` }, "Show text")
      : h("span", { class: "hint" }, "—");
    const row = h(
      "tr",
      { class: t.present ? "" : "bad" },
      h("td", {}, h("code", {}, shown(t.path))),
      h("td", {}, t.when.length ? joined(t.when.map((w) => shown(w)), ", ") : "—"),
      h("td", {}, h("code", {}, shown(t.template))),
      h("td", {}, t.present ? "✓ yes" : "✗ missing"),
      h("td", {}, t.create_only ? "yes" : "no"),
      h("td", {}, Object.entries(t.properties).map(([k, v]) => h("div", {}, h("code", {}, shown(k), "=", shown(v))))),
      h("td", {}, btn),
    );
    const textRow = h(
      "tr",
      { class: "tpl-text", id: textId, hidden: true },
      h("td", { colspan: "7" },
        h("pre", { tabindex: "0", "aria-label": `Text of ${plain(t.template)}` }, shown(t.text, "\n\t")),
        t.text_truncated ? h("p", { class: "hint" }, `(first 64 KiB of ${bytes(t.size)})`) : null),
    );
    if (t.text !== null) {
      btn.addEventListener("click", () => {
        const open = textRow.hidden;
        textRow.hidden = !open;
        btn.setAttribute("aria-expanded", String(open));
        btn.textContent = open ? "Hide text" : "Show text";
      });
    }
    tb.append(row, textRow);
  });
  $("no-templates").hidden = r.templates.length > 0;
  $("templates").closest(".table-wrap").hidden = r.templates.length === 0;

  const groups = [["error", "Errors"], ["warning", "Warnings"], ["info", "Notes"]];
  const f = $("findings");
  f.replaceChildren();
  for (const [sev, title] of groups) {
    const list = r.findings.filter((x) => x.severity === sev);
    if (!list.length) continue;
    f.append(
      h("section", { class: `findings ${sev}`, "aria-label": `${title} (${list.length})` },
        h("h3", {}, `${title} (${list.length})`),
        h("ul", {}, list.map((x) => h("li", {},
          h("code", { class: "code" }, x.code), " ", shown(x.message),
          where(x).length ? h("span", { class: "where" }, " — ", joined(where(x), ", ")) : null)))),
    );
  }
  if (!r.findings.length) {
    f.append(ref.accepted === true ? h("p", { class: "ok" }, "No findings.") : h("p", {}, "No other findings than the verdict above."));
  }

  $("files").tBodies[0].replaceChildren(
    ...r.files.map((x) => h("tr", {},
      h("td", {}, x.role), h("td", {}, x.name === null ? "—" : shown(x.name)), h("td", {}, x.compression),
      h("td", {}, bytes(x.size)), h("td", {}, x.decoded_size === null ? "—" : bytes(x.decoded_size)),
      h("td", {}, h("code", { class: "long" }, x.sha256 ?? "—")))),
  );
  $("rootfs-summary").replaceChildren(...rootfsSummary(r));
  const rate = m.ms > 0 ? ` (${bytes(Math.round(m.bytes / (m.ms / 1000)))}/s)` : "";
  $("timing").textContent = `Read ${bytes(m.bytes)} in ${(m.ms / 1000).toFixed(2)} s${rate}` +
    (r.verdict_offset !== null ? `; the ${referenceName()} verdict was known after ${bytes(r.verdict_offset)}.` : ".");
}

/**
 * The `creatable` verdict: whether `lxc init` creates an instance from the imported image, and
 * whether that instance then fails at its first start (creating and starting are different).
 */
function launchText(c, r) {
  if (!c) return "—";
  const breaks = r.findings.find((f) => firstStart.includes(f.code));
  if (c.ok === true && breaks) {
    return h("span", { class: "bad-text" }, "✓ created, ✗ fails at first start: ", shown(breaks.message));
  }
  if (c.ok === true) return "✓ yes";
  if (c.ok === false) return h("span", { class: "bad-text" }, "✗ no: ", h("code", {}, shown(c.error ?? c.code)));
  const why = { "import-rejected": "— (not imported)", "import-not-judged": "— (import not judged)" }[c.code];
  return h("span", { class: "hint", title: plain(c.error ?? "") }, why ?? ["? ", shown(c.error ?? "unknown")]);
}

/** Where a finding is: its file, tar entry and offset (nodes; the entry name is the image's). */
function where(x) {
  const w = [];
  if (x.file) w.push(`${x.file} file`);
  if (x.entry) w.push(h("span", {}, "entry ", shown(x.entry)));
  if (x.offset !== null) w.push(`offset ${x.offset}`);
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
    ["Architecture: ", r.architecture ?? (md ? [shown(md.architecture), " (not known to LXD)"] : "?")].flat(),
    [`Type: ${r.type ?? "?"}`],
    [`Public: no`],
    [`Timestamps:`],
    [`    Created: ${md ? lxcTime(md.created) : "?"}`],
    [`    Uploaded: (when imported)`],
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
  const parts = [`Rootfs: ${x.format}`];
  if (x.entries !== null) parts.push(`${x.entries} entries, ${bytes(x.bytes)} of file data`);
  if (x.squashfs) parts.push(`squashfs ${x.squashfs.version}, ${x.squashfs.compressor}, ${x.squashfs.inode_count} inodes`);
  if (x.qcow2) parts.push(`qcow2 v${x.qcow2.version}, virtual size ${bytes(x.qcow2.virtual_size)}`);
  if (r.os_release?.pretty_name) parts.push(shown(r.os_release.pretty_name));
  return joined(parts, " · ");
}

// ---- input: drop, picker, URL --------------------------------------------------------------------

function fromFiles(list) {
  const files = [...list];
  if (!files.length) return fail("Nothing to read: drop files, not folders or links.");
  if (files.length > 2) return fail(`${files.length} files given: give one file (a unified image) or two (the metadata and rootfs files of a split image).`);
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
    if (!urls.length) return fail("Type the address of an image first.");
    for (const u of urls) {
      let p;
      try {
        p = new URL(u, location.href);
      } catch {
        return fail(`Not a URL: ${u}`);
      }
      if (!/^https?:$/.test(p.protocol)) return fail(`Only http and https addresses can be fetched: ${u}`);
    }
    inspect(urls.map((u) => ({ kind: "url", url: new URL(u, location.href).href })));
  });
  $("cancel").addEventListener("click", () => cancel(true));
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
  $("copied").textContent = `Copied: ${text.length > 40 ? text.slice(0, 40) + "…" : text}`;
}

setup();
