// Node module hooks for the unit tests: `import wasmModule from "….wasm"` gives a compiled
// `WebAssembly.Module`, as wrangler's bundler and workerd do, so src/core.js runs unchanged in Node.
// Registered by unit.test.js (`module.register`) before it imports the worker's modules.
export async function load(url, context, nextLoad) {
  if (new URL(url).pathname.endsWith(".wasm")) {
    return {
      format: "module",
      shortCircuit: true,
      source: `import { readFileSync } from "node:fs";
export default new WebAssembly.Module(readFileSync(new URL(${JSON.stringify(url)})));`,
    };
  }
  return nextLoad(url, context);
}
