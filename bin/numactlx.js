#!/usr/bin/env node
// The installed entry point: loads launcher/entry.ts's module, which does everything.
// `npm run build` bundles numactlx (build/bundle.mjs): one module graph per thread
// instead of ≈ 40 modules, read and linked one by one, in each of the three isolates a
// session starts (docs/BENCHMARKS.md §5c). tsc's output is used when it is newer than the
// bundle (a `tsc` run alone since the last bundle), so a stale bundle never runs.
import { statSync, writeSync } from 'node:fs';

const bundle = new URL('../dist/bundle/numactlx.js', import.meta.url);
const compiled = new URL('../dist/launcher/entry.js', import.meta.url);
const mtime = (url) => { try { return statSync(url).mtimeMs; } catch { return -1; } };
const [bundled, built] = [mtime(bundle), mtime(compiled)];
if (bundled < 0 && built < 0) {
  writeSync(2, `numactlx: not built: ${new URL('../dist/', import.meta.url).pathname} has neither the bundle nor tsc's output (run npm run build)\n`);
  process.exit(1);
}
await import(bundled >= 0 && bundled >= built ? bundle.href : compiled.href);
