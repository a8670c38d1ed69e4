// "Make an image" and "Fix it": the page side (make-worker.js runs the core in the Web Worker).
//
// initMake(container, newWorker): builds the section inside `container`; `newWorker()` gives a Web
// Worker running worker.js (main.js's, under its Trusted Types policy). Make: a rootfs file (the
// user's own; it stays as it is) → the proposed metadata.yaml, the metadata tarball to download,
// the fingerprint and the import command. Fix it: an image (one file, or the two of a split
// image) → the fixes (each with the finding code it answers), the diff of metadata.yaml, and the
// repaired metadata tarball to download once the core accepts the repaired image.
// Untrusted text (file names, metadata) only reaches the DOM as text nodes.

import { t, tNodes, applyI18n } from "./i18n.js";
import { h } from "./dom.js";
import { saveRewritten } from "./rewrite.js";

/** A label/element pair whose label text follows the language (data-i18n). */
function labelled(id, key, input) {
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id, "data-i18n": key }, t(key)), input);
}

/** Accepted by every target, created by `lxc init`, and no error finding. */
function problems(report) {
  const out = [];
  for (const [key, v] of Object.entries(report.verdicts)) {
    if (v.accepted === false) out.push(`${key}: ${v.error ?? ""}`);
  }
  const c = report.verdicts["lxd-5.0"]?.creatable;
  if (c && c.ok === false) out.push(`lxc init: ${c.error ?? ""}`);
  for (const f of report.findings) if (f.severity === "error") out.push(`${f.code}: ${f.message}`);
  return out;
}

function download(bytes, name) {
  const url = URL.createObjectURL(new Blob([bytes], { type: "application/x-xz" }));
  const a = h("a", { href: url, download: name, class: "download" }, t("make.download", { name }));
  return a;
}

export function initMake(container, newWorker) {
  if (!container) return;
  let worker = null;
  let seq = 0;
  const run = (msg, onDone, out) => {
    if (worker) worker.terminate();
    worker = newWorker();
    const id = ++seq;
    const bar = h("progress", { max: 1, value: 0 });
    out.replaceChildren(bar);
    worker.onmessage = (e) => {
      const m = e.data;
      if (m.id !== id && m.type !== "ready") return;
      if (m.type === "progress" && m.total) bar.value = m.done / m.total;
      else if (m.type === "error") out.replaceChildren(h("p", { class: "error", role: "alert" }, m.key ? t(m.key, m.params) : m.message));
      else if (m.type === "made" || m.type === "repaired") {
        worker.terminate();
        worker = null;
        onDone(m);
      }
    };
    worker.postMessage({ ...msg, id, now: Math.floor(Date.now() / 1000) });
  };

  // --- make ---
  const rootfs = h("input", { type: "file" });
  const fields = {
    architecture: h("input", { type: "text", "data-i18n-attr": "placeholder:make.fromRootfs", placeholder: t("make.fromRootfs") }),
    os: h("input", { type: "text", "data-i18n-attr": "placeholder:make.fromRootfs", placeholder: t("make.fromRootfs") }),
    release: h("input", { type: "text", "data-i18n-attr": "placeholder:make.fromRootfs", placeholder: t("make.fromRootfs") }),
    variant: h("input", { type: "text", placeholder: "default" }),
    description: h("input", { type: "text", "data-i18n-attr": "placeholder:make.fromRootfs", placeholder: t("make.fromRootfs") }),
  };
  const set = h("select", {}, ...["basic", "cloud-init", "none"].map((s) => h("option", { value: s }, s)));
  const makeOut = h("div", { id: "make-out", "aria-live": "polite" });
  const makeBtn = h("button", { type: "button", id: "make-go", "data-i18n": "make.go" }, t("make.go"));
  makeBtn.addEventListener("click", () => {
    const file = rootfs.files[0];
    if (!file) {
      makeOut.replaceChildren(h("p", { class: "error" }, t("make.noFile")));
      return;
    }
    const choices = { templateSet: set.value };
    for (const [k, el] of Object.entries(fields)) if (el.value.trim()) choices[k] = el.value.trim();
    run({ type: "make", file, choices }, (m) => {
      const bad = problems(m.report);
      const arch = m.probe.architecture;
      const kids = [
        h("p", {}, arch && !choices.architecture
          ? t("make.archFrom", { arch: arch.name, file: arch.file, path: arch.path })
          : t("make.archGiven", { arch: m.report.architecture ?? "" })),
        h("h3", { "data-i18n": "make.yaml" }, t("make.yaml")),
        h("pre", { class: "yaml", id: "make-yaml" }, m.yaml),
      ];
      if (bad.length) {
        kids.push(h("p", { class: "error" }, t("make.notAccepted")), h("ul", {}, ...bad.map((b) => h("li", {}, b))));
      } else {
        kids.push(
          h("dl", { class: "kv" }, h("dt", {}, t("make.fingerprint")), h("dd", {}, h("code", { id: "make-fp", class: "long" }, m.report.fingerprint))),
          h("p", {}, download(m.tarball, m.metaName), " ", t("make.rootfsIsYours")),
          h("div", { class: "cmd" }, h("code", { id: "make-cmd", class: "long" }, m.command)),
          h("p", { class: "hint" }, t("make.speed", { mbs: (m.bytes / 1e6 / (m.ms / 1000)).toFixed(0), memory: (m.memory / 1048576).toFixed(0) })),
        );
      }
      makeOut.replaceChildren(...kids);
    }, makeOut);
  });

  // --- repair ---
  const image = h("input", { type: "file", multiple: true });
  const fixOut = h("div", { id: "fix-out", "aria-live": "polite" });
  const fixBtn = h("button", { type: "button", id: "fix-go", "data-i18n": "repair.go" }, t("repair.go"));
  fixBtn.addEventListener("click", () => {
    const files = [...image.files];
    if (files.length < 1 || files.length > 2) {
      fixOut.replaceChildren(h("p", { class: "error" }, t("repair.files")));
      return;
    }
    run({ type: "repair", files }, (m) => {
      const kids = [];
      if (m.error) {
        kids.push(h("p", { class: "error" }, t("repair.none"), " ", m.error));
      } else if (!m.plan.fixes.length) {
        kids.push(h("p", {}, t("repair.nothing")));
      } else {
        kids.push(
          h("h3", {}, t("repair.fixes")),
          h("ul", { id: "fix-list" }, ...m.plan.fixes.map((f) => h("li", {}, h("code", {}, f.code), " ", f.what))),
          h("h3", {}, t("repair.diff")),
          h("pre", { class: "diff", id: "fix-diff" }, m.diff),
        );
        for (const u of m.plan.unfixable) kids.push(h("p", { class: "error" }, t("repair.unfixable"), " ", u));
        if (m.after) {
          const bad = problems(m.after);
          if (bad.length) kids.push(h("p", { class: "error" }, t("repair.stillBad")), h("ul", {}, ...bad.map((b) => h("li", {}, b))));
          else if (m.tarball)
            kids.push(
              h("dl", { class: "kv" }, h("dt", {}, t("repair.fingerprint")), h("dd", {}, h("code", { id: "fix-fp", class: "long" }, m.after.fingerprint))),
              h("p", {}, download(m.tarball, m.name)),
              h("div", { class: "cmd" }, h("code", { class: "long" }, m.command)),
            );
          else {
            // A unified image: saved as a stream by www/rewrite.js, never held whole in memory.
            const status = h("p", { id: "fix-saved", role: "status" });
            const save = h("button", { type: "button", id: "fix-save" }, t("repair.save", { name: m.name }));
            save.addEventListener("click", async () => {
              save.disabled = true;
              try {
                const r = await saveRewritten(files[0], m.edits, m.name, { format: m.format ?? undefined, makeWorker: newWorker });
                const same = r.summary.fingerprint === m.after.fingerprint;
                status.replaceChildren(t(same ? "repair.saved" : "repair.savedDiffers", { name: m.name, fingerprint: r.summary.fingerprint }));
              } catch (e) {
                status.replaceChildren(h("span", { class: "error" }, t("repair.error", { error: e.message ?? String(e) })));
              } finally {
                save.disabled = false;
              }
            });
            kids.push(
              h("dl", { class: "kv" }, h("dt", {}, t("repair.fingerprint")), h("dd", {}, h("code", { id: "fix-fp", class: "long" }, m.after.fingerprint))),
              h("p", {}, save),
              status,
              h("div", { class: "cmd" }, h("code", { class: "long" }, m.command)),
            );
          }
        } else {
          kids.push(h("p", { class: "hint" }, t("repair.unifiedCli")));
        }
      }
      fixOut.replaceChildren(...kids);
    }, fixOut);
  });

  container.replaceChildren(
    h("h2", { "data-i18n": "make.title" }, t("make.title")),
    h("p", { "data-i18n": "make.lede" }, tNodes("make.lede", { sh: h("code", { "data-i18n-part": "sh" }, "/bin/sh"), osRelease: h("code", { "data-i18n-part": "osRelease" }, "os-release") })),
    labelled("make-rootfs", "make.rootfs", rootfs),
    h("div", { class: "grid" },
      labelled("make-arch", "make.arch", fields.architecture),
      labelled("make-os", "make.os", fields.os),
      labelled("make-release", "make.release", fields.release),
      labelled("make-variant", "make.variant", fields.variant),
      labelled("make-description", "make.description", fields.description),
      labelled("make-set", "make.templateSet", set)),
    makeBtn,
    makeOut,
    h("h2", { "data-i18n": "repair.title" }, t("repair.title")),
    h("p", { "data-i18n": "repair.lede" }, t("repair.lede")),
    labelled("fix-image", "repair.image", image),
    fixBtn,
    fixOut,
  );
  applyI18n(container);
  return {
    /** "Fix it" from the report: the inspected files go to this section's repair, run at once. */
    fix(files) {
      const dt = new DataTransfer();
      for (const f of files) dt.items.add(f);
      image.files = dt.files;
      image.scrollIntoView({ block: "center" });
      fixBtn.click();
    },
  };
}
