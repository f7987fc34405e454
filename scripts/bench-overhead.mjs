// Framework overhead: trainer with six no-op plugins vs a bare tfjs loop (same model, data, optimizer).
//   node scripts/bench-overhead.mjs [--steps 60] [--json]
import { wasmProvider } from '../core/backend-wasm/dist/src/index.js';
import { DefaultBackendService, MemoryLogger } from '../core/trainer/dist/src/index.js';
import { benchOverhead } from '../core/bench/dist/src/overhead.js';

const arg = (n, d) => (process.argv.includes(n) ? process.argv[process.argv.indexOf(n) + 1] : d);
const backend = new DefaultBackendService(new MemoryLogger());
backend.register('wasm', wasmProvider);
await backend.select('wasm');
const r = await benchOverhead({ steps: Number(arg('--steps', '60')) });
if (process.argv.includes('--json')) console.log(JSON.stringify(r));
else
  console.log(
    `framework overhead (small-cnn, digits, batch ${r.batchSize}, ${r.steps} steps, wasm, best of 3): bare loop ${r.bareImagesPerSec.toFixed(1)} img/s, trainer + 6 no-op plugins ${r.trainerImagesPerSec.toFixed(1)} img/s: ratio ${r.ratio.toFixed(3)} (${((1 - r.ratio) * 100).toFixed(1)}% slower; bar: at most 3%)`,
  );
