// tf.variableGrads with the memory of a PyTorch backward pass. tfjs-core's Engine.gradients keeps the
// gradient of every intermediate tensor, and every tensor saved for backprop, until the whole backward
// pass ends, so a step holds the activations and all their gradients at once (about twice the memory the
// model needs; at 224 px it is what overflowed the wasm heap). This walks the same tape in the same order
// with the same gradient functions and additions, so the gradients are bit-identical, but frees each
// node's saved tensors and its outputs' gradients as soon as the node has been processed.
// For higher-order gradients (a gradient inside a gradient) it defers to tf.variableGrads.
import * as tf from '@tensorflow/tfjs-core';

interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
}
interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  startTape(): void;
  endTape(): void;
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  tidy<T extends tf.TensorContainer>(name: string | (() => T), f?: () => T): T;
}

/** The nodes of the tape on a path from one of xs to y, inputs pruned to those that depend on xs (as tfjs-core). */
function filteredTape(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      for (const o of node.outputs) fromX.add(o.id);
      nodesFromX.add(node.id);
    }
  }
  const toY = new Set([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i]!;
    if (node.outputs.some((o) => toY.has(o.id))) {
      for (const t of Object.values(node.inputs)) toY.add(t.id);
      nodesToY.add(node.id);
    }
  }
  const out: TapeNode[] = [];
  for (const node of tape) {
    if (!nodesFromX.has(node.id) || !nodesToY.has(node.id)) continue;
    const inputs: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(node.inputs)) if (fromX.has(t.id)) inputs[k] = t;
    out.push({ ...node, inputs });
  }
  return out;
}

/**
 * As tf.variableGrads(f, vars): the scalar f() and the gradients of the trainable variables by name, computed
 * with the same tape; each intermediate gradient and saved tensor is freed once its node is done.
 */
export function variableGradsFrugal(f: () => tf.Scalar, vars: tf.Variable[]): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const engine = tf.engine() as unknown as EngineInternals;
  if (engine.state.gradientDepth > 0) return tf.variableGrads(f, vars);
  const xs = vars.filter((v) => v.trainable);
  if (xs.length === 0) throw new Error('variableGradsFrugal: none of the variables is trainable');
  const y = engine.scopedRun(
    () => engine.startTape(),
    () => engine.endTape(),
    () => engine.tidy('forward', f),
  );
  const tape = engine.state.activeTape ?? [];
  const freeTape = () => {
    for (const node of tape) for (const t of node.saved ?? []) t.dispose();
    engine.state.activeTape = null;
  };
  if (!(y instanceof tf.Tensor) || y.rank !== 0) {
    freeTape();
    tf.dispose(y);
    throw new Error('variableGradsFrugal: f must return a scalar');
  }
  const nodes = filteredTape(tape, xs, y);
  const isX = new Set(xs.map((x) => x.id));
  const result = engine.tidy('backward', () => {
    const grad = new Map<number, tf.Tensor>();
    // a gradient function may hand back a tensor object it was given: free an object only when no entry holds it
    const holders = new Map<tf.Tensor, number>();
    const hold = (id: number, t: tf.Tensor) => {
      grad.set(id, t);
      holders.set(t, (holders.get(t) ?? 0) + 1);
    };
    const release = (id: number) => {
      const t = grad.get(id);
      if (!t) return;
      grad.delete(id);
      const n = (holders.get(t) ?? 1) - 1;
      if (n > 0) holders.set(t, n);
      else {
        holders.delete(t);
        t.dispose();
      }
    };
    hold(y.id, tf.onesLike(y));
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i]!;
      const dys = node.outputs.map((o) => grad.get(o.id) ?? null);
      if (!node.gradient) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
      const inputGradients = node.gradient(dys);
      for (const [name, x] of Object.entries(node.inputs)) {
        if (!(name in inputGradients))
          throw new Error(`Cannot backprop through input ${name}. Available gradients found: ${Object.keys(inputGradients)}.`);
        const dx = engine.tidy(() => inputGradients[name]!());
        if (dx.dtype !== 'float32')
          throw new Error(
            `Error in gradient for op ${node.kernelName}. The gradient of input ${name} must have 'float32' dtype, but has '${dx.dtype}'`,
          );
        if (!tf.util.arraysEqual(dx.shape, x.shape))
          throw new Error(
            `Error in gradient for op ${node.kernelName}. The gradient of input '${name}' has shape '${dx.shape}', which does not match the shape of the input '${x.shape}'`,
          );
        const cur = grad.get(x.id);
        if (cur === undefined) hold(x.id, dx);
        else {
          const sum = tf.add(cur, dx);
          release(x.id);
          hold(x.id, sum);
        }
      }
      for (const o of node.outputs) if (!isX.has(o.id)) release(o.id);
      for (const t of node.saved ?? []) t.dispose();
      node.saved = [];
    }
    const grads: tf.NamedTensorMap = {};
    for (const x of xs) {
      const g = grad.get(x.id);
      if (g) grads[(x as tf.Variable).name] = g;
    }
    return { value: y as tf.Scalar, grads };
  });
  freeTape();
  if (Object.keys(result.grads).length === 0) {
    y.dispose();
    throw new Error('Cannot find a connection between any variable and the result of the loss function y=f(x).');
  }
  return result;
}
