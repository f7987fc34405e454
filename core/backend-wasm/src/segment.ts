// UnsortedSegmentSum for the wasm backend (it has none): the gradient of gather, which
// embedding lookups and Swin's relative-position bias table need.
import {
  UnsortedSegmentSum,
  util,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
  type UnsortedSegmentSumAttrs,
} from '@tensorflow/tfjs-core';
import { Native, type KernelArgs } from './native.js';

function unsortedSegmentSum(args: Parameters<KernelFunc>[0]): TensorInfo {
  const { inputs, backend, attrs } = args as unknown as KernelArgs<'x' | 'segmentIds', UnsortedSegmentSumAttrs>;
  const { x, segmentIds } = inputs;
  const { numSegments } = attrs;
  const rows = util.sizeFromShape(segmentIds.shape);
  const rowSize = rows === 0 ? 0 : util.sizeFromShape(x.shape) / rows;
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const nat = Native.of(backend);
  const out = backend.makeOutput(outShape, x.dtype);
  const View = x.dtype === 'int32' ? Int32Array : Float32Array;
  const heap = nat.heap();
  const xs = new View(heap, nat.ptr(x), rows * rowSize);
  const ids = new Int32Array(heap, nat.ptr(segmentIds), rows);
  const o = new View(heap, nat.ptr(out), numSegments * rowSize);
  o.fill(0);
  for (let r = 0; r < rows; r++) {
    const s = ids[r]!;
    if (s < 0 || s >= numSegments) continue;
    for (let j = 0, a = r * rowSize, b = s * rowSize; j < rowSize; j++) o[b + j]! += xs[a + j]!;
  }
  return out;
}

export const segmentConfigs: KernelConfig[] = [{ kernelName: UnsortedSegmentSum, backendName: 'wasm', kernelFunc: unsortedSegmentSum }];
