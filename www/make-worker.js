// "Make an image" and "Fix it" inside the Web Worker (worker.js dispatches here): the core does
// everything (pkg/, WebAssembly); this only reads the files and posts the results.
//
// Messages, page → worker:
//   {type: "make", id, file: File, choices: {architecture?, os?, release?, variant?, description?,
//    templateSet?}, now}
//     The rootfs is read twice: once for the proposal (ELF header of /bin/sh, os-release), once by
//     the core's inspection of the made split image (the fingerprint: SHA-256 of metadata ‖ rootfs).
//   {type: "repair", id, files: [File] | [File, File], now}
// Worker → page:
//   {type: "progress", id, done, total}
//   {type: "made", id, probe, yaml, tarball, metaName, report, command, ms, bytes, memory}
//   {type: "repaired", id, before, plan, diff, error, tarball, name, after, command}
//     tarball (split images): the repaired metadata tarball, already inspected again with the
//     rootfs (`after`); error: why there is no mechanical repair.

import { Inspector, MakeProbe, Repairer, Rewrite, rootfsIndex, shellQuote, memoryBytes } from "./pkg/lxdimg.js";

const PROGRESS_EVERY_MS = 100;

/** The file name without the extensions LXD's formats carry (as the CLI's `stem`). */
export function stem(name) {
  let s = name || "image";
  for (const ext of [".xz", ".gz", ".bz2", ".zst", ".lzma", ".lz4", ".tgz", ".txz", ".tar", ".squashfs", ".sqfs", ".qcow2", ".img"]) {
    if (s.endsWith(ext)) s = s.slice(0, -ext.length);
  }
  return s || "image";
}

function progress(id, total, post) {
  let done = 0;
  let last = 0;
  return (n) => {
    done += n;
    const t = performance.now();
    if (t - last >= PROGRESS_EVERY_MS) {
      last = t;
      post({ type: "progress", id, done, total });
    }
  };
}

async function readAll(file, push, step, stop = () => false) {
  const reader = file.stream().getReader();
  for (;;) {
    if (stop()) {
      await reader.cancel();
      return;
    }
    const { done, value } = await reader.read();
    if (done) return;
    push(value);
    step(value.length);
  }
}

export async function makeImage({ id, file, choices, now }, post) {
  const step = progress(id, file.size * 2, post);
  const t0 = performance.now();
  const probe = new MakeProbe();
  let found, made;
  try {
    // Stops as soon as /bin/sh's architecture and os-release are known.
    await readAll(file, (c) => probe.push(c), step, () => probe.settled);
    found = probe.finish();
    made = probe.metadata(choices, now);
  } finally {
    probe.free();
  }
  const metaName = `${stem(file.name)}.metadata.tar.xz`;
  const insp = new Inspector({ now, names: [metaName, file.name] });
  let report;
  try {
    insp.push(made.tarball);
    insp.startRootfs();
    await readAll(file, (c) => insp.push(c), step);
    report = insp.finish();
  } finally {
    insp.free();
  }
  const command = ["lxc", "image", "import", shellQuote(metaName), shellQuote(file.name), "--alias", shellQuote(made.alias)].join(" ");
  post({
    type: "made", id, probe: found, yaml: made.yaml, tarball: made.tarball, metaName, report, command,
    ms: performance.now() - t0, bytes: file.size, memory: memoryBytes(),
  });
}

export async function repairImage({ id, files, now }, post) {
  if (files.length === 2) {
    const heads = await Promise.all(files.map(async (f) => new Uint8Array(await f.slice(0, 512).arrayBuffer())));
    if (rootfsIndex(heads[0], files[0].size, heads[1], files[1].size) === 0) files = [files[1], files[0]];
  }
  const step = progress(id, files.reduce((n, f) => n + f.size, 0) * 2, post);
  const rep = new Repairer({ now, names: [files[0].name, files[1]?.name ?? null] });
  let r;
  try {
    for (const [i, f] of files.entries()) {
      if (i === 1) rep.startRootfs();
      await readAll(f, (c) => rep.push(c), step);
    }
    r = rep.finish(now);
  } finally {
    rep.free();
  }
  let after = null;
  let name = null;
  let command = null;
  if (r.tarball && files.length === 2) {
    name = `${stem(files[0].name)}.repaired.tar.xz`;
    const insp = new Inspector({ now, names: [name, files[1].name] });
    try {
      insp.push(r.tarball);
      insp.startRootfs();
      await readAll(files[1], (c) => insp.push(c), step);
      after = insp.finish();
    } finally {
      insp.free();
    }
    command = ["lxc", "image", "import", shellQuote(name), shellQuote(files[1].name)].join(" ");
  }
  if (r.edits && files.length === 1) {
    // A unified image: the streaming rewrite (src/rewrite/) run once into the core's inspection,
    // nothing kept; the page then saves the same rewrite as a stream (www/rewrite.js), whose
    // fingerprint must equal the one checked here.
    const s = stem(files[0].name);
    name = `${s}.repaired${r.format === "xz" ? ".tar.xz" : files[0].name.slice(s.length)}`;
    const rw = new Rewrite(r.edits, r.format ? { format: r.format } : undefined);
    const insp = new Inspector({ now, names: [name, null] });
    try {
      await readAll(files[0], (c) => {
        const out = rw.push(c);
        if (out.length) insp.push(out);
      }, step);
      const end = rw.finish();
      if (end.output.length) insp.push(end.output);
      after = insp.finish();
    } finally {
      rw.free();
      insp.free();
    }
    command = ["lxc", "image", "import", shellQuote(name)].join(" ");
  }
  post({
    type: "repaired", id, before: r.report, plan: r.plan ?? null, diff: r.diff ?? "", error: r.error ?? null,
    tarball: r.tarball ?? null, edits: r.edits ?? null, format: r.format ?? null, name, after, command,
  });
}
