/**
 * Graph utilities over a functional LayersModel: the layer graph, and rebuilding a model from an edited topology
 * and new weights (it stays a standard LayersModel). Export's BN folding and ONNX writer and the prune plugin's
 * channel graph build on them.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';

/** The Keras-style JSON topology of a model (snake_case keys, as model.json holds it). */
export interface Topology {
  class_name: string;
  config: { name: string; layers: TopoLayer[]; input_layers: unknown[]; output_layers: [string, number, number][] };
  [k: string]: unknown;
}
export interface TopoLayer {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound_nodes: [string, number, number, Record<string, unknown>][][];
}

export interface LayerNode {
  name: string;
  className: string;
  layer: tfl.layers.Layer;
  /** Names of the layers whose outputs this layer takes, in order. */
  inputs: string[];
  /** Names of the layers that take this layer's output. */
  consumers: string[];
}

/** The layer graph of a functional model, in the model's (topological) layer order. */
export function layerGraph(model: LayersModel): Map<string, LayerNode> {
  const nodes = new Map<string, LayerNode>();
  for (const layer of model.layers) {
    const inbound = layer.inboundNodes.filter((n) => n.outboundLayer === layer);
    if (inbound.length > 1) throw new Error(`layer ${layer.name} is applied ${inbound.length} times; shared layers are not supported here`);
    const inputs = (inbound[0]?.inboundLayers ?? []).map((l) => l.name);
    nodes.set(layer.name, { name: layer.name, className: layer.getClassName(), layer, inputs, consumers: [] });
  }
  for (const n of nodes.values()) for (const i of n.inputs) nodes.get(i)?.consumers.push(n.name);
  return nodes;
}

/** A deep copy of a model's topology. */
export function modelTopology(model: LayersModel): Topology {
  return JSON.parse(JSON.stringify(model.toJSON(null, false))) as Topology;
}

/** A layer's weight by its short name (kernel, bias, gamma, moving_mean, depthwise_kernel...). */
export function weightOf(layer: tfl.layers.Layer, short: string): tfl.LayerVariable | undefined {
  return layer.weights.find(
    (w) =>
      w.originalName === `${layer.name}/${short}` || (w.originalName.endsWith(`/${short}`) && w.originalName.startsWith(`${layer.name}/`)),
  );
}

/** Every weight of a model by its saved name (layer/short), values read now (not copies). */
export function namedWeights(model: LayersModel): Map<string, tf.Tensor> {
  return new Map(model.weights.map((w) => [w.originalName, w.read()]));
}

/**
 * Builds a LayersModel from a topology and named weights through the standard loader (tf.io.fromMemory),
 * so the result is exactly what `tf.loadLayersModel` would give for the same model.json.
 */
export async function modelFromParts(
  topology: Topology,
  weights: Map<string, tf.Tensor>,
  metadata?: Record<string, unknown>,
): Promise<LayersModel> {
  const named = [...weights].map(([name, tensor]) => ({ name, tensor }));
  const { data, specs } = await tf.io.encodeWeights(named);
  const weightData = tf.io.CompositeArrayBuffer.join(data);
  const model = await tfl.loadLayersModel(
    tf.io.fromMemory({ modelTopology: topology as unknown as tf.io.ModelJSON['modelTopology'], weightSpecs: specs, weightData }),
  );
  if (metadata) model.setUserDefinedMetadata(metadata as object);
  return model;
}

/** Removes a single-input layer from a topology, wiring its consumers (and the model outputs) to its input. */
export function removeLayer(topo: Topology, name: string): void {
  const layers = topo.config.layers;
  const i = layers.findIndex((l) => l.name === name);
  if (i < 0) throw new Error(`removeLayer: no layer ${name}`);
  const node = layers[i].inbound_nodes[0];
  if (!node || node.length !== 1) throw new Error(`removeLayer: ${name} must have exactly one input`);
  const [src, srcNode, srcTensor] = node[0];
  for (const l of layers)
    for (const n of l.inbound_nodes)
      for (const e of n)
        if (e[0] === name) {
          e[0] = src;
          e[1] = srcNode;
          e[2] = srcTensor;
        }
  for (const o of topo.config.output_layers)
    if (o[0] === name) {
      o[0] = src;
      o[1] = srcNode;
      o[2] = srcTensor;
    }
  layers.splice(i, 1);
}

export function topoLayer(topo: Topology, name: string): TopoLayer {
  const l = topo.config.layers.find((x) => x.name === name);
  if (!l) throw new Error(`no layer ${name} in the topology`);
  return l;
}
