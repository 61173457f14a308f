/**
 * C++ (Itanium ABI) and Rust symbol names demangled by a real demangler: the Firefox profiler's
 * WebAssembly build of the `cpp_demangle` and `rustc-demangle` crates (npm gecko-profiler-demangle).
 *
 * demangle() is synchronous: the module is compiled (about 1 ms: V8 compiles its functions when
 * they first run) the first time a mangled name is demangled, so a session that never prints a
 * C++ name never loads it. The package's own JavaScript glue is an ES module that the `dbg open`
 * bundle cannot load synchronously, so the few lines of wasm-bindgen calling convention it needs
 * are here:
 *
 *   demangle_any(ptr, len) -> [ptr, len]   UTF-8 in, UTF-8 out, both in the module's memory;
 *   __wbindgen_malloc(size, align), __wbindgen_free(ptr, size, align) own that memory.
 *
 * Results are cached (a backtrace names the same functions again and again).
 */

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute } from 'node:path';

/** The part of the WebAssembly global used here (the project's lib settings do not declare it). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
}
const { WebAssembly } = globalThis as unknown as { WebAssembly: WebAssemblyApi };

interface Exports {
  memory: { buffer: ArrayBuffer };
  demangle_any(ptr: number, len: number): [number, number];
  __wbindgen_malloc(size: number, align: number): number;
  __wbindgen_free(ptr: number, size: number, align: number): void;
  __wbindgen_export_0: { grow(n: number): number; set(i: number, v: unknown): void };
  __wbindgen_start?: () => void;
}

let wasm: Exports | undefined;
let failed = false;
const cache = new Map<string, string>();
const CACHE_MAX = 50_000;
const decoder = new TextDecoder('utf-8', { fatal: true });

/** True for the names demangle() would change: Itanium `_Z…` and Rust v0 `_R…`. */
export function isMangled(name: string): boolean {
  return name.startsWith('_Z') || name.startsWith('_R');
}

function instance(): Exports | undefined {
  if (wasm || failed) return wasm;
  try {
    // In dbg's CommonJS bundle (scripts/bundle.mjs) import.meta is empty: resolve from the bundle.
    const from = typeof __filename === 'string' && isAbsolute(__filename) ? __filename : import.meta.url;
    const path = createRequire(from).resolve('gecko-profiler-demangle/index_bg.wasm');
    let ex: Exports | undefined;
    const imports = {
      './index_bg.js': {
        // wasm-bindgen's start-up: reserve the externref table's first slots (undefined, null, true, false).
        __wbindgen_init_externref_table: () => {
          const table = ex!.__wbindgen_export_0;
          const at = table.grow(4);
          table.set(0, undefined);
          [undefined, null, true, false].forEach((v, i) => table.set(at + i, v));
        },
      },
    };
    ex = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(path)), imports).exports as unknown as Exports;
    ex.__wbindgen_start?.();
    wasm = ex;
  } catch {
    failed = true; // names stay as the symbol table has them
  }
  return wasm;
}

/** Kept for callers that load it ahead of time; demangle() loads it on first need anyway. */
export function loadDemangler(): Promise<void> {
  instance();
  return Promise.resolve();
}

/** `_ZN2ns3Foo3barEi` -> `ns::Foo::bar(int)`; other names, and names it cannot parse, as given. */
export function demangle(name: string): string {
  if (!isMangled(name)) return name;
  const hit = cache.get(name);
  if (hit !== undefined) return hit;
  const w = instance();
  if (!w) return name;
  let d = name;
  try {
    const bytes = Buffer.from(name, 'utf8');
    const ptr = w.__wbindgen_malloc(bytes.length, 1) >>> 0;
    new Uint8Array(w.memory.buffer, ptr, bytes.length).set(bytes);
    const [outPtr, outLen] = w.demangle_any(ptr, bytes.length);
    try {
      d = decoder.decode(new Uint8Array(w.memory.buffer, outPtr >>> 0, outLen >>> 0));
    } finally {
      w.__wbindgen_free(outPtr, outLen, 1);
    }
    if (d === name.slice(1)) d = name; // not a name it could parse: it only dropped the "_"
    else d = asGdbPrints(d);
  } catch {
    d = name; // a name the demangler cannot parse stays as the symbol table has it
  }
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(name, d);
  return d;
}

/** Template arguments that are integer literals, as libiberty writes them: `1l`, `2u`, `true`. */
const LITERAL_SUFFIX: Record<string, string> = { int: '', long: 'l', 'unsigned int': 'u', unsigned: 'u', 'unsigned long': 'ul' };

/**
 * cpp_demangle's text where it differs from libiberty's (gdb's, c++filt's) in a way that can be
 * mended from the text alone: special names (`{vtable(T)}` is gdb's `vtable for T`; a
 * construction vtable's two classes come in the other order), thunks (`{virtual override thunk({offset(-16)}, f)}` is gdb's
 * `non-virtual thunk to f`) and integer template arguments (`(long)1` is gdb's `1l`). What
 * cannot (libiberty's `std::string` for the `Ss` abbreviation, the return type it prints before
 * a function template's name) stays as cpp_demangle writes it.
 */
function asGdbPrints(d: string): string {
  let out = d;
  const special = /^\{(vtable|vtt)\((.*)\)\}$/.exec(out);
  if (special) out = `${special[1] === 'vtt' ? 'VTT' : 'vtable'} for ${special[2]}`;
  const ctor = /^construction vtable for (.*)-in-(.*)$/.exec(out);
  if (ctor) out = `construction vtable for ${ctor[2]}-in-${ctor[1]}`;
  if (out.startsWith('{virtual override thunk({')) {
    const m = /^\{virtual override thunk\(\{(virtual offset|offset)\([^)]*\)\}, (.*)\)\}$/.exec(out);
    if (m) out = `${m[1] === 'offset' ? 'non-virtual' : 'virtual'} thunk to ${m[2]}`;
  }
  if (out.includes(')')) {
    out = out.replace(/\((int|long|unsigned int|unsigned|unsigned long|bool)\)(-?\d+)/g, (all, type: string, n: string) =>
      type === 'bool' ? (n === '0' ? 'false' : n === '1' ? 'true' : all) : `${n}${LITERAL_SUFFIX[type]}`,
    );
  }
  return out;
}
