// The training forward pass of a functional LayersModel, freeing each layer's output as soon as the last
// layer that reads it has run. tfjs-layers' own call (Container.runInternalGraph) keeps every intermediate
// until the surrounding tidy ends, so at the end of a training forward all layer outputs are alive at once,
// also those no gradient needs (a batch norm's output once the ReLU after it has saved its own output).
// The gradient tape holds its own references to what it saved, so freeing here never loses a value the
// backward pass reads. Same layers, same calls, same order: the outputs are identical to model.apply's.
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';

interface GraphNode {
  outboundLayer: { apply(inputs: tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[]; getClassName(): string };
  inputTensors: SymbolicTensor[];
  outputTensors: SymbolicTensor[];
}
interface Graph {
  inputs: SymbolicTensor[];
  outputs: SymbolicTensor[];
  nodesByDepth?: Record<string, GraphNode[]>;
}

/** model.apply(x, {training: true}) with intermediates freed early; other model kinds go to model.apply. */
export function applyTraining(model: LayersModel, x: tf.Tensor): tf.Tensor {
  const g = model as unknown as Graph;
  if (!g.nodesByDepth || g.inputs.length !== 1 || g.outputs.length !== 1 || model.constructor.name === 'Sequential')
    return model.apply(x, { training: true }) as tf.Tensor;
  const depths = Object.keys(g.nodesByDepth)
    .map(Number)
    .sort((a, b) => b - a);
  // readers left per symbolic tensor (the model's output counts as one more)
  const readers = new Map<number, number>();
  const order: GraphNode[] = [];
  for (const d of depths)
    for (const node of g.nodesByDepth[d]!) {
      if (node.outboundLayer.getClassName() === 'InputLayer') continue;
      order.push(node);
      for (const t of node.inputTensors) readers.set(t.id, (readers.get(t.id) ?? 0) + 1);
    }
  const outId = g.outputs[0]!.id;
  readers.set(outId, (readers.get(outId) ?? 0) + 1);
  const value = new Map<number, tf.Tensor>([[g.inputs[0]!.id, x]]);
  // a layer may hand back a tensor it was given (an identity, Dropout outside training): free an object once no id holds it
  const holders = new Map<tf.Tensor, number>([[x, 1]]);
  const release = (id: number) => {
    const n = (readers.get(id) ?? 0) - 1;
    readers.set(id, n);
    if (n > 0) return;
    const t = value.get(id);
    value.delete(id);
    if (!t) return;
    const h = (holders.get(t) ?? 1) - 1;
    holders.set(t, h);
    if (h === 0 && t !== x) t.dispose();
  };
  for (const node of order) {
    if (!node.inputTensors.every((t) => value.has(t.id))) continue;
    const inputs = node.inputTensors.map((t) => value.get(t.id)!);
    // as tfjs-layers' execute() calls each layer in training: apply(inputs, {training: true})
    const out = node.outboundLayer.apply(inputs, { training: true });
    const outs = Array.isArray(out) ? out : [out];
    node.outputTensors.forEach((s, i) => {
      const t = outs[i]!;
      if ((readers.get(s.id) ?? 0) === 0) {
        if (!holders.get(t) && t !== x) t.dispose(); // nothing reads it
        return;
      }
      value.set(s.id, t);
      holders.set(t, (holders.get(t) ?? 0) + 1);
    });
    for (const t of node.inputTensors) release(t.id);
  }
  const y = value.get(outId);
  if (!y) throw new Error(`applyTraining: could not compute the output of ${model.name}`);
  return y;
}
