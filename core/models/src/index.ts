export { type ModelCost, countParams, modelCost } from './flops.js';
export {
  type LayerNode,
  type Topology,
  type TopoLayer,
  layerGraph,
  modelFromParts,
  modelTopology,
  namedWeights,
  removeLayer,
  topoLayer,
  weightOf,
} from './graph.js';
export { modelsBuiltin, modelsModule, registerModels } from './register.js';
export { resnetCifar } from './resnet-cifar.js';
export { type GroupedConvImpl, groupedConv2d } from './runtime.js';
export { smallCnn } from './small-cnn.js';
export { registerZoo } from './zoo.js';
