/**
 * C++ (Itanium ABI) and Rust symbol names demangled by a real demangler: the Firefox profiler's
 * WebAssembly build of the `cpp_demangle` and `rustc-demangle` crates (npm gecko-profiler-demangle).
 *
 * loadDemangler() instantiates it once (a few ms); demangle() is synchronous after that, and
 * before it (or for a name that is not mangled) returns the name unchanged.
 */

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** The part of the WebAssembly global used here (the project's lib settings do not declare it). */
interface WebAssemblyApi {
  instantiate(bytes: Uint8Array, imports: Record<string, unknown>): Promise<{ instance: { exports: Record<string, unknown> } }>;
}
const { WebAssembly } = globalThis as unknown as { WebAssembly: WebAssemblyApi };

let wasm: typeof import('gecko-profiler-demangle/index_bg.js') | undefined;
let loading: Promise<void> | undefined;

/** True for the names demangle() would change: Itanium `_Z…` and Rust v0 `_R…`. */
export function isMangled(name: string): boolean {
  return name.startsWith('_Z') || name.startsWith('_R');
}

export function loadDemangler(): Promise<void> {
  loading ??= (async () => {
    const bg = await import('gecko-profiler-demangle/index_bg.js');
    // In dbg's CommonJS bundle (scripts/bundle.mjs) import.meta is empty: resolve from the bundle.
    const from = typeof __filename === 'string' ? __filename : import.meta.url;
    const path = createRequire(from).resolve('gecko-profiler-demangle/index_bg.wasm');
    const { instance } = await WebAssembly.instantiate(readFileSync(path), { './index_bg.js': bg });
    bg.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as (() => void) | undefined)?.();
    wasm = bg;
  })();
  return loading;
}

/** `_ZN2ns3Foo3barEi` -> `ns::Foo::bar(int)`; other names, and any name before loadDemangler(), as given. */
export function demangle(name: string): string {
  if (!wasm || !isMangled(name)) return name;
  try {
    const d = wasm.demangle_any(name);
    return d === name.slice(1) ? name : d; // not a name it could parse: it only dropped the "_"
  } catch {
    return name; // a name the demangler cannot parse stays as the symbol table has it
  }
}
