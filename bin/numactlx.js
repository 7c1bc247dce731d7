#!/usr/bin/env node
// The installed entry point. First, before anything else loads, hold the signals a
// session will forward or use (launcher/early-signals.ts); then run. Everything happens
// in run(); this file only turns its result into the exit status.
import { holdSignals } from '../dist/launcher/early-signals.js';

holdSignals();
const { main } = await import('../dist/launcher/main.js');
main(process.argv.slice(2));
