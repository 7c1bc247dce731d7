// Bundles numactlx after tsc (`npm run build`) into dist/bundle/: each worker thread's
// graph as one ES module (engine-worker.js, tracer-worker.js, checksum-worker.js), the
// main thread's as three (below). A module two graphs use is in both: each thread is an
// isolate of its own and loads its own copy anyway. Node loads each module of a graph on
// its own (resolve, read, compile, link): ≈ 40 modules a graph from tsc's output, 20–40
// shared chunks when esbuild split the bundles (stop 25 to 28); one module a graph starts
// a session ≈ 50 ms sooner unpinned and ≈ 110 ms pinned (docs/BENCHMARKS.md §5f). A dynamic
// import() inside a bundle stays in it, evaluated when it is called.
//
// Left outside the bundle: koffi (a native addon, loaded from node_modules as before) and
// node-cron (it finds files of its own next to its modules). launcher/own-files.ts finds
// the worker modules beside itself when NUMACTLX_BUNDLE is defined.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const outdir = path.join(dist, 'bundle');
// The workers' entries are launcher/own-files.ts's (tsc's output of it, which finds them by the same names).
const { WORKER_ENTRIES } = await import(pathToFileURL(path.join(dist, 'launcher/own-files.js')).href);

fs.rmSync(outdir, { recursive: true, force: true });
const common = {
  outdir,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['koffi', 'node-cron'],
  define: { NUMACTLX_BUNDLE: 'true' },
  // Bundled CommonJS (minimist) calls require() for Node's own modules.
  banner: { js: "import { createRequire as numactlxRequire } from 'node:module'; const require = numactlxRequire(import.meta.url);" },
  logLevel: 'warning',
};
const at = (file) => path.join(dist, file);
// The main thread's graph in three modules: numactlx.js, the entry, small, so that it
// starts the workers (early-workers.ts) before main's 350 KB are compiled; early.js, the
// state the entry sets up and main uses (the signals held, the workers started) and every
// module it needs; main.js, the rest. Every module early.js holds is imported from it, so
// each has one instance in the thread.
const EARLY = ['early-signals.js', 'early-workers.js'].map((f) => at(`launcher/${f}`));
const reExports = (files) => ({ contents: files.map((f) => `export * from ${JSON.stringify(f)};`).join('\n'), resolveDir: dist, sourcefile: 'early.js' });
const probe = await build({ ...common, stdin: reExports(EARLY), write: false, metafile: true, outdir: undefined, outfile: path.join(outdir, 'early.js') });
const inEarly = Object.keys(probe.metafile.inputs).map((f) => path.resolve(root, f))
  .filter((f) => f.startsWith(dist) && fs.existsSync(f)); // not the stdin module itself
const fromEarly = (also = {}) => ({
  name: 'numactlx-main-split',
  setup(b) {
    b.onResolve({ filter: /\.js$/ }, (args) => {
      const file = path.resolve(args.resolveDir, args.path);
      if (inEarly.includes(file)) return { path: './early.js', external: true };
      if (also[file]) return { path: also[file], external: true };
      return undefined;
    });
  },
});
await build({ ...common, stdin: reExports(inEarly), outfile: path.join(outdir, 'early.js'), outdir: undefined });
await build({ ...common, entryPoints: { numactlx: at('launcher/entry.js') }, plugins: [fromEarly({ [at('launcher/main.js')]: './main.js' })] });
await build({ ...common, entryPoints: { main: at('launcher/main.js') }, plugins: [fromEarly()] });
// Each worker's graph one module.
await build({ ...common, entryPoints: Object.fromEntries(Object.entries(WORKER_ENTRIES).map(([name, file]) => [name, at(file)])) });
