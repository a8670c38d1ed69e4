// The template preview: each template of the inspected image rendered as LXD would render it at
// the chosen trigger, beside its text, for an instance the reader describes (name, type,
// architecture, config keys such as user.user-data, devices); re-rendered on every edit.
//
// The rendering is the core's (`renderTemplate`, the same code as `lxdimg render`); the template
// texts are the Report's (`templates[].text`, up to 1 MiB each, 4 MiB in all). This module loads
// its own copy of the wasm in the page (rendering is bounded and quick; the inspection stays in
// worker.js). Everything from the image reaches the DOM as text nodes only.
//
// main.js calls templatePreview(report) each time it renders a Report (also after a language
// switch, with the same Report object: the reader's edits are kept).

import init, { renderTemplate, imageConfig, controlCharacters } from "./pkg/lxdimg.js";
import { t, tNodes } from "./i18n.js";
import { h } from "./dom.js";

const TRIGGERS = ["create", "copy", "start", "rename"];
/** The devices of LXD's default profile, as a new instance gets them. */
const DEFAULT_DEVICES = "eth0,type=nic,name=eth0,network=lxdbr0\nroot,type=disk,path=/,pool=default";

let wasm = null; // the init() promise
let controls = null; // RegExp of the control characters (from the core)
let state = null; // {report, values}
let timer = null;

/** A textarea holding `value` (set as its value: no text node in the document). */
function textarea(attrs, value) {
  const el = h("textarea", attrs);
  el.value = value;
  return el;
}

const code = (x) => h("code", {}, shown(x));

/** Untrusted text with its control characters (other than line breaks and tabs) made visible. */
function shown(s) {
  const text = String(s ?? "");
  if (!controls) return text;
  return text.replace(controls, (c) => (c === "\n" || c === "\t" ? c : `\\u{${c.codePointAt(0).toString(16)}}`));
}

function defaults(report) {
  return {
    name: "c1",
    type: report.type ?? "container",
    architecture: report.architecture ?? "x86_64",
    trigger: report.templates.some((x) => x.when.includes("create")) ? "create" : (report.templates[0]?.when.find((w) => TRIGGERS.includes(w)) ?? "create"),
    config: [["user.user-data", ""], ["user.network-config", ""]],
    devices: DEFAULT_DEVICES,
  };
}

/** Renders the preview for this Report into #template-preview (hidden when it has no templates). */
export function templatePreview(report) {
  const root = document.getElementById("template-preview");
  if (!root) return;
  if (!report?.templates?.length) {
    root.hidden = true;
    root.replaceChildren();
    state = null;
    return;
  }
  if (!state || state.report !== report) state = { report, values: defaults(report) };
  root.hidden = false;
  wasm ??= init().then(() => {
    controls = new RegExp(`[${controlCharacters()}]`, "gu");
  });
  wasm.then(
    () => build(root),
    (e) => root.replaceChildren(h("p", { class: "error" }, t("render.wasmFailed", { error: String(e) }))),
  );
}

function field(id, label, input) {
  return h("div", { class: "render-field" }, h("label", { for: id }, label), input);
}

function build(root) {
  const v = state.values;
  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(renderAll, 120);
  };
  const name = h("input", { id: "render-name", value: v.name, spellcheck: "false", oninput: (e) => ((v.name = e.target.value), changed()) });
  const type = h("select", { id: "render-type", onchange: (e) => ((v.type = e.target.value), changed()) },
    h("option", { value: "container", selected: v.type === "container" }, t("render.type.container")),
    h("option", { value: "virtual-machine", selected: v.type === "virtual-machine" }, t("render.type.vm")));
  const arch = h("input", { id: "render-arch", value: v.architecture, spellcheck: "false", oninput: (e) => ((v.architecture = e.target.value), changed()) });
  const trigger = h("select", { id: "render-trigger", onchange: (e) => ((v.trigger = e.target.value), changed()) },
    TRIGGERS.map((x) => h("option", { value: x, selected: v.trigger === x }, x)));
  const rows = h("div", { class: "render-config" });
  const drawRows = () => {
    rows.replaceChildren(...v.config.map((pair, i) => h("div", { class: "render-config-row" },
      h("input", { class: "render-key", value: pair[0], spellcheck: "false", "aria-label": t("render.config.key", { n: i + 1 }),
        oninput: (e) => ((pair[0] = e.target.value), changed()) }),
      textarea({ class: "render-value", rows: "2", spellcheck: "false", "aria-label": t("render.config.value", { n: i + 1 }),
        oninput: (e) => ((pair[1] = e.target.value), changed()) }, pair[1]),
      h("button", { type: "button", class: "small", onclick: () => { v.config.splice(i, 1); drawRows(); changed(); } }, t("render.config.remove")))));
  };
  drawRows();
  const add = h("button", { type: "button", class: "small", onclick: () => { v.config.push(["", ""]); drawRows(); changed(); } }, t("render.config.add"));
  const devices = textarea({ id: "render-devices", rows: "3", spellcheck: "false", oninput: (e) => ((v.devices = e.target.value), changed()) }, v.devices);

  root.replaceChildren(
    h("h2", { id: "render-title" }, t("render.title")),
    h("p", { class: "hint" }, t("render.intro")),
    h("form", { class: "render-form", onsubmit: (e) => e.preventDefault() },
      h("div", { class: "render-row" },
        field("render-name", t("render.name"), name),
        field("render-type", t("render.type"), type),
        field("render-arch", t("render.arch"), arch),
        field("render-trigger", t("render.trigger"), trigger)),
      h("fieldset", {}, h("legend", {}, t("render.config")), h("p", { class: "hint" }, tNodes("render.config.hint", { examples: code("user.user-data, user.network-config, cloud-init.user-data"), image: code("image.*") })), rows, add),
      field("render-devices", t("render.devices"), devices),
      h("p", { class: "hint" }, tNodes("render.devices.hint", { format: code("name,key=value,key=value"), eth0: code("eth0"), root: code("root") }))),
    h("div", { id: "render-results", "aria-live": "polite" }),
  );
  renderAll();
}

/** The context the core renders with: the form's values, the image's `image.*` keys below them. */
function context() {
  const v = state.values;
  const r = state.report;
  const config = imageConfig(r.metadata?.properties ?? {}, r.fingerprint ?? undefined);
  // LXD drops config keys set to "": an empty value is no key.
  for (const [k, val] of v.config) if (k.trim() !== "" && val !== "") config[k.trim()] = val;
  const devices = {};
  const bad = [];
  v.devices.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const [name, ...kvs] = line.split(",");
    const d = (devices[name.trim()] ??= {});
    for (const kv of kvs) {
      const at = kv.indexOf("=");
      if (at <= 0 || name.trim() === "") bad.push(i + 1);
      else d[kv.slice(0, at).trim()] = kv.slice(at + 1);
    }
  });
  return { ctx: { name: v.name, type: v.type, architecture: v.architecture, config, devices }, bad };
}

function renderAll() {
  const out = document.getElementById("render-results");
  if (!out || !state) return;
  const { ctx, bad } = context();
  const trigger = state.values.trigger;
  const cards = [];
  if (bad.length) cards.push(h("p", { class: "error" }, t("render.devices.bad", { lines: bad.join(", ") })));
  const skipped = [];
  state.report.templates.forEach((tpl, i) => {
    if (!tpl.when.includes(trigger)) {
      skipped.push(tpl.path);
      return;
    }
    let result;
    if (tpl.text === null) result = h("p", { class: "error" }, tNodes("render.missing", { file: code(`templates/${tpl.template}`), error: code("Failed to read template file") }));
    else if (tpl.text_truncated) result = h("p", { class: "hint" }, tNodes("render.truncated", { file: code(`templates/${tpl.template}`) }));
    else {
      let r;
      try {
        r = renderTemplate(tpl.text, { ...ctx, properties: tpl.properties }, trigger, tpl.path);
      } catch (e) {
        r = { error: { kind: "execution", line: 0, col: 0, message: String(e), hint: null } };
      }
      if (r.error) {
        const e = r.error;
        result = h("div", { class: `render-error render-${e.kind}` },
          h("p", {}, e.line > 0 ? tNodes("render.errorAt", { file: code(`templates/${tpl.template}`), line: e.line, col: e.col }) : tNodes("render.error", { file: code(`templates/${tpl.template}`) })),
          h("pre", { class: "render-message" }, shown(e.message)),
          e.hint ? h("p", { class: "hint" }, shown(e.hint)) : null,
          h("p", { class: "hint" }, t(`render.kind.${e.kind}`)));
      } else {
        result = h("div", {},
          h("pre", { class: "render-output", "data-path": tpl.path, tabindex: "0", "aria-label": t("render.outputLabel", { path: shown(tpl.path) }) }, shown(r.output)),
          r.output === "" ? h("p", { class: "hint" }, t("render.empty")) : null,
          ...(r.notes ?? []).map((n) => h("p", { class: "hint" }, shown(n))));
      }
    }
    cards.push(h("article", { class: "render-card", id: `render-card-${i}` },
      h("h3", {}, h("code", {}, shown(tpl.path)), " ",
        h("span", { class: "hint" }, tNodes("render.from", { file: code(`templates/${tpl.template}`), when: code(tpl.when.join(", ")) }))),
      h("div", { class: "render-cols" },
        h("div", {}, h("h4", {}, t("render.template")), h("pre", { class: "render-source", tabindex: "0" }, shown(tpl.text ?? ""))),
        h("div", {}, h("h4", {}, t("render.rendered")), result))));
  });
  if (!cards.length || skipped.length === state.report.templates.length) cards.push(h("p", { class: "hint" }, tNodes("render.none", { trigger: code(trigger) })));
  if (skipped.length) cards.push(h("p", { class: "hint" }, tNodes("render.skipped", { trigger: code(trigger), paths: code(skipped.join(", ")) })));
  out.replaceChildren(...cards);
}
