#!/usr/bin/env python3
"""Fails if a .wasm module imports anything from the host (native-only code leaked into the core)."""
import sys

def leb(b, i):
    r = s = 0
    while True:
        x = b[i]; i += 1
        r |= (x & 0x7f) << s; s += 7
        if x < 0x80:
            return r, i

def imports(path):
    b = open(path, "rb").read()
    assert b[:4] == b"\0asm", f"{path}: not a wasm module"
    i, out = 8, []
    while i < len(b):
        sid = b[i]; i += 1
        size, i = leb(b, i)
        if sid == 2:
            j = i
            n, j = leb(b, j)
            for _ in range(n):
                ml, j = leb(b, j); mod = b[j:j + ml].decode(); j += ml
                fl, j = leb(b, j); name = b[j:j + fl].decode(); j += fl
                out.append(f"{mod}.{name}")
                kind = b[j]; j += 1
                if kind == 0: _, j = leb(b, j)
                elif kind == 1: j += 1; flag = b[j]; j += 1; _, j = leb(b, j); j = leb(b, j)[1] if flag & 1 else j
                elif kind == 2: flag = b[j]; j += 1; _, j = leb(b, j); j = leb(b, j)[1] if flag & 1 else j
                elif kind == 3: j += 2
        i += size
    return out

# src/wasm.rs's bindings import from wasm-bindgen's placeholder modules; `wasm-bindgen` (wasm-pack)
# replaces those with its generated JS glue, so they are not host imports.
BINDGEN = ("__wbindgen_placeholder__.", "__wbindgen_externref_xform__.")
found = [i for i in imports(sys.argv[1]) if not i.startswith(BINDGEN)]
if found:
    sys.exit(f"{sys.argv[1]} imports from the host: {', '.join(found)}")
print(f"{sys.argv[1]}: no host imports")
