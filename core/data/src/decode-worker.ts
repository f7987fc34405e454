// A decode worker of the folder loader's crop-at-decode path (decode-pool.ts): sharp decodes the file on the
// thread pool, then the crop, resize, flip and pixel map run here in JS (crop.ts), written straight into the
// batch's shared float32 buffer. The training thread only copies the finished batch into a tensor.
import { parentPort } from 'node:worker_threads';
import { decodeCropInto, type DecodeRequest } from './decode-pool.js';

const port = parentPort!;
port.on('message', (m: DecodeRequest) => {
  decodeCropInto(m).then(
    () => port.postMessage({ id: m.id }),
    (e: unknown) => port.postMessage({ id: m.id, error: (e as Error).message?.split('\n')[0] ?? String(e) }),
  );
});
