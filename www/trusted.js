// Trusted Types (`require-trusted-types-for 'script'; trusted-types lxdimg`): `new Worker` and
// `serviceWorker.register` take a TrustedScriptURL, and this policy makes one only for the page's
// own worker.js and sw.js. One policy per page (the CSP allows one named lxdimg), shared by every
// module that starts a worker (main.js, rewrite.js).
const OWN_SCRIPTS = new Set(["./worker.js", "./sw.js"].map((u) => new URL(u, import.meta.url).href));
const scriptPolicy = globalThis.trustedTypes?.createPolicy("lxdimg", {
  createScriptURL(u) {
    const href = new URL(u, import.meta.url).href;
    if (!OWN_SCRIPTS.has(href)) throw new TypeError(`not one of the page's scripts: ${href}`);
    return href;
  },
});
export const scriptURL = (u) => (scriptPolicy ? scriptPolicy.createScriptURL(u) : new URL(u, import.meta.url).href);
