// numactlx's first module (bin/numactlx.js loads it, bundled or as tsc wrote it). First,
// before anything else loads, hold the signals a session will forward or use
// (early-signals.ts) and, for a command line that asks for a virtual node, start the
// engine and tracer workers, so that they load while the rest of numactlx does
// (early-workers.ts); then run. Everything happens in main().
import { holdSignals } from './early-signals.js';
import { startEarly } from './early-workers.js';

holdSignals();
startEarly(process.argv.slice(2));
const { main } = await import('./main.js');
main(process.argv.slice(2));
