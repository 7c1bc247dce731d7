// numactlx's own files that it opens at run time — its worker threads' entry modules and
// package.json — found from this module's URL, wherever it runs from: tsc's output
// (dist/launcher/own-files.js) or the bundle (dist/bundle/, build/bundle.mjs), where every
// entry module sits beside the chunk that holds this one. The bundler defines
// NUMACTLX_BUNDLE; tsc's output never sees it defined. The bundle's entry names are
// build/bundle.mjs's `entries` (test/package/pack.test.ts runs the bundle alone).
declare const NUMACTLX_BUNDLE: true | undefined;
const BUNDLED = typeof NUMACTLX_BUNDLE !== 'undefined';
const own = (inBundle: string, compiled: string): URL => new URL(BUNDLED ? inBundle : compiled, import.meta.url);

export const ENGINE_WORKER = own('./engine-worker.js', '../src/engine-thread/engine-worker.js');
export const TRACER_WORKER = own('./tracer-worker.js', '../src/tracer-thread/tracer-worker.js');
export const CHECKSUM_WORKER = own('./checksum-worker.js', '../src/checksum-thread/checksum-worker.js');
/** The same in both layouts: dist/launcher/ and dist/bundle/ are two levels below the package's root. */
export const PACKAGE_JSON = new URL('../../package.json', import.meta.url);
