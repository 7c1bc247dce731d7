#!/usr/bin/env node
// The installed entry point. First, before anything else loads, hold the signals a
// session will forward or use (launcher/early-signals.ts) and, for a command line that
// asks for a virtual node, start the engine and tracer workers, so that they load while
// the rest of numactlx does (launcher/early-workers.ts); then run. Everything happens in
// run(); this file only turns its result into the exit status.
import { holdSignals } from '../dist/launcher/early-signals.js';
import { startEarly } from '../dist/launcher/early-workers.js';

holdSignals();
startEarly(process.argv.slice(2));
const { main } = await import('../dist/launcher/main.js');
main(process.argv.slice(2));
