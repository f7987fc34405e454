import * as tfl from '@tensorflow/tfjs-layers';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import { definePlugin, STAGE_MIX, TricksError, type BlockInfo } from '@tricks/core';

export const PLUGIN_NAME = 'se-block';
/** Architecture taps have no ordering needs of their own; another block tap can go before or after this one. */
export const STAGE = STAGE_MIX;

export interface SeBlockOptions {
  /** Reduction ratio r: the squeeze layer has channels / r units. */
  reduction: number;
  /** The squeeze layer never has fewer units than this. */
  minChannels: number;
  /** Stages (1-based, as BlockInfo.stage) that get SE; empty: every stage. */
  stages: number[];
}

/** Units of the squeeze layer for a branch of `channels` channels. */
export function squeezeUnits(channels: number, o: Pick<SeBlockOptions, 'reduction' | 'minChannels'>): number {
  return Math.max(o.minChannels, Math.floor(channels / o.reduction));
}

/**
 * Squeeze-and-excitation (Hu et al. 2018, Fig. 3) on one residual branch: global average pool, FC down to
 * channels/r (with bias), ReLU, FC up (with bias), sigmoid, channel-wise scale of the branch. A rank-4 branch
 * [B,H,W,C] (convnets, and Swin, whose blocks keep the token map 2-D) pools over H and W; a rank-3 token
 * sequence [B,L,C] pools over L. The two FCs are the 1x1 convs of the reference (same parameters).
 */
export function squeezeExcite(branch: SymbolicTensor, info: BlockInfo, o: SeBlockOptions): SymbolicTensor {
  const rank = branch.shape.length;
  const c = branch.shape[rank - 1];
  if (c == null || (rank !== 4 && rank !== 3)) {
    throw new TricksError(
      `se-block: block ${info.name} of ${info.model} has a branch of shape ${JSON.stringify(branch.shape)}`,
      'se-block needs [batch, height, width, channels] or [batch, tokens, channels] with known channels',
    );
  }
  const n = `${info.name}_seblock`;
  const pool =
    rank === 4 ? tfl.layers.globalAveragePooling2d({ name: `${n}_pool` }) : tfl.layers.globalAveragePooling1d({ name: `${n}_pool` });
  let s = pool.apply(branch) as SymbolicTensor;
  s = tfl.layers.dense({ units: squeezeUnits(c, o), activation: 'relu', name: `${n}_fc1` }).apply(s) as SymbolicTensor;
  s = tfl.layers.dense({ units: c, activation: 'sigmoid', name: `${n}_fc2` }).apply(s) as SymbolicTensor;
  s = tfl.layers.reshape({ targetShape: rank === 4 ? [1, 1, c] : [1, c], name: `${n}_reshape` }).apply(s) as SymbolicTensor;
  return tfl.layers.multiply({ name: `${n}_scale` }).apply([branch, s]) as SymbolicTensor;
}

export default definePlugin<SeBlockOptions>({
  name: PLUGIN_NAME,
  description:
    'Squeeze-and-Excitation on every residual branch (GAP, FC down by r, ReLU, FC up, sigmoid, channel scale), on any backbone that emits the block hook',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      reduction: { type: 'number', exclusiveMinimum: 0, default: 16 },
      minChannels: { type: 'integer', minimum: 1, default: 8 },
      stages: { type: 'array', items: { type: 'integer', minimum: 1 }, uniqueItems: true, default: [] },
    },
  },
  apply(api, options) {
    api.hooks.block.tap({ name: PLUGIN_NAME, stage: STAGE }, (branch, info) =>
      options.stages.length === 0 || options.stages.includes(info.stage) ? squeezeExcite(branch, info, options) : branch,
    );
  },
});
