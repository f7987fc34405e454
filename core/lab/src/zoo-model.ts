import type { LayersModel } from '@tensorflow/tfjs-layers';
import { ModelRegistry, Rng, withSeededMathRandom } from '@tricks/core';
import { registerModels } from '@tricks/models';

/** Builds a zoo model with seeded initial weights (also the builder DataParallel workers import). */
export function buildZooModel(name: string, input: number, channels: number, classes: number): LayersModel {
  return withSeededMathRandom(new Rng(0), () =>
    registerModels(new ModelRegistry()).build(name, { inputShape: [input, input, channels], numClasses: classes }),
  );
}

/** The reference a DataParallel worker builds the same model from (this module, by URL). */
export function zooModelRef(name: string, input: number, channels: number, classes: number) {
  return { module: import.meta.url, export: 'buildZooModel', args: [name, input, channels, classes] };
}
