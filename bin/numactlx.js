#!/usr/bin/env node
// The installed entry point. First, before anything else loads, hold the signals a
// session will forward or use (launcher/early-signals.ts); then run. Everything happens
// in run(); this file only turns its result into the exit status.
import { holdSignals } from '../dist/launcher/early-signals.js';
import { startEarlyWorkers } from '../dist/launcher/early-workers.js';

holdSignals();
// A run with --remap: the engine and tracer threads start loading now (early-workers.ts).
startEarlyWorkers(process.argv.slice(2));
const { main } = await import('../dist/launcher/main.js');
main(process.argv.slice(2));
