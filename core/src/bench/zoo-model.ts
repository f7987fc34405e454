import type { LayersModel } from '@tensorflow/tfjs-layers';
import { ModelRegistry } from '../models/registry.js';
import { Rng } from '../util/rng.js';
import { withSeededMathRandom } from '../util/seeded-random.js';

/** Builds a registered model with seeded initial weights (also the builder DataParallel workers import). */
export function buildZooModel(name: string, input: number, channels: number, classes: number): LayersModel {
  return withSeededMathRandom(new Rng(0), () => new ModelRegistry().build(name, { inputShape: [input, input, channels], numClasses: classes }));
}
