// numactlx's own files that it opens at run time — its worker threads' entry modules and
// package.json — found from this module's URL, wherever it runs from: tsc's output
// (dist/launcher/own-files.js) or the bundle (dist/bundle/, build/bundle.mjs), where every
// entry module sits beside the others. The bundler defines
// NUMACTLX_BUNDLE; tsc's output never sees it defined (test/package/pack.test.ts runs the
// bundle alone).
declare const NUMACTLX_BUNDLE: true | undefined;
const BUNDLED = typeof NUMACTLX_BUNDLE !== 'undefined';

/** The worker threads' entry modules: each one's name in the bundle → tsc's output under dist/. build/bundle.mjs bundles these. */
export const WORKER_ENTRIES = {
  'engine-worker': 'src/engine-thread/engine-worker.js',
  'tracer-worker': 'src/tracer-thread/tracer-worker.js',
  'checksum-worker': 'src/checksum-thread/checksum-worker.js',
} as const;
const own = (name: keyof typeof WORKER_ENTRIES): URL => new URL(BUNDLED ? `./${name}.js` : `../${WORKER_ENTRIES[name]}`, import.meta.url);

export const ENGINE_WORKER = own('engine-worker');
export const TRACER_WORKER = own('tracer-worker');
export const CHECKSUM_WORKER = own('checksum-worker');
/** The same in both layouts: dist/launcher/ and dist/bundle/ are two levels below the package's root. */
export const PACKAGE_JSON = new URL('../../package.json', import.meta.url);
