#!/usr/bin/env node
// The installed entry point: everything happens in run(); this file only
// turns its result into the exit status.
import { main } from '../dist/launcher/main.js';

main(process.argv.slice(2));
