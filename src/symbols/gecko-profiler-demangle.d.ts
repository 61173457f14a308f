// gecko-profiler-demangle 0.4 is a wasm-bindgen "bundler" build: its index.js imports the .wasm as
// an ES module, which Node cannot, so dbg instantiates index_bg.wasm itself with index_bg.js as its
// import object (src/symbols/demangle.ts). This declares the part of index_bg.js dbg uses.
declare module 'gecko-profiler-demangle/index_bg.js' {
  export function __wbg_set_wasm(exports: Record<string, unknown>): void;
  export function demangle_any(name: string): string;
}
