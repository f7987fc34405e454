import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { TricksError } from '../hooks/errors.js';
import { completeDir, writeDirAtomic } from '../io/atomic.js';
import { decodeTensors, encodeTensors, loadModel, saveModel } from '../io/model-files.js';
import type { TricksOptimizer } from '../optim/optimizer.js';
import type { RngState } from '../util/rng.js';
import type { PluginState } from './context.js';

export const CHECKPOINT_FORMAT = 1;

/** Everything a run needs to continue exactly where it stopped. */
export interface TrainerState {
  format: number;
  /** Next epoch to run (and the step within it, when the run stopped mid-epoch). */
  epoch: number;
  stepInEpoch: number;
  step: number;
  rng: RngState;
  /** The generator behind tfjs's own random ops (dropout, initializers). */
  tfRng: RngState;
  configHash: string;
  config: unknown;
  metrics: unknown[];
  /** Running sums of the interrupted epoch. */
  partial?: { lossSum: number; seen: number; seconds: number };
  plugins: Record<string, unknown>;
}

/** Engine names of the model's weights, in order. */
function variableNames(model: LayersModel): string[] {
  return model.weights.map((w) => (w.read() as tf.Variable).name);
}

/** "conv1/kernel_3/momentum" -> "#4/momentum" when conv1/kernel_3 is weight 4. */
function renameSlot(slot: string, names: string[], to: (i: number) => string): string {
  // The longest variable name that prefixes the slot name wins ("a/b" vs "a/b_1").
  let best = -1;
  names.forEach((n, i) => {
    if (slot.startsWith(`${n}/`) && (best < 0 || n.length > names[best].length)) best = i;
  });
  return best < 0 ? slot : `${to(best)}${slot.slice(names[best].length)}`;
}

export interface Checkpointer {
  save(
    dir: string,
    parts: { model: LayersModel; optimizer: TricksOptimizer; state: TrainerState; plugins: Map<string, PluginState> },
  ): Promise<void>;
  /** Undefined when there is no checkpoint in dir. */
  exists(dir: string): string | undefined;
  loadState(dir: string): Promise<TrainerState>;
  restore(dir: string, parts: { model: LayersModel; optimizer: TricksOptimizer; plugins: Map<string, PluginState> }): Promise<TrainerState>;
}

/**
 * OUT/checkpoint/: model/ (tfjs LayersModel), optimizer.json + optimizer.bin (slots), plugins.bin
 * (plugin tensors), state.json. Written into a temp dir and swapped in with renames.
 */
export class DirCheckpointer implements Checkpointer {
  exists(dir: string): string | undefined {
    return completeDir(dir);
  }

  async save(dir: string, { model, optimizer, state, plugins }: Parameters<Checkpointer['save']>[1]): Promise<void> {
    await writeDirAtomic(dir, async (tmp) => {
      await saveModel(model, join(tmp, 'model'));
      // Slots are keyed by tfjs variable names, which get suffixes when several models live in one
      // process; store them under the weight's position instead, so any process can restore them.
      const names = variableNames(model);
      const slots = (await optimizer.getWeights()).map(({ name, tensor }) => ({ name: renameSlot(name, names, (i) => `#${i}`), tensor }));
      const opt = await encodeTensors(slots);
      await writeFile(join(tmp, 'optimizer.bin'), opt.data);
      await writeFile(
        join(tmp, 'optimizer.json'),
        JSON.stringify({
          className: (optimizer.constructor as { className?: string }).className,
          config: optimizer.getConfig(),
          specs: opt.specs,
        }),
      );
      const pluginJson: Record<string, unknown> = {};
      const pluginTensors: { name: string; tensor: tf.Tensor }[] = [];
      for (const [name, ps] of plugins) {
        const s = await ps.save();
        pluginJson[name] = { json: s.json, tensors: Object.keys(s.tensors ?? {}) };
        for (const [k, t] of Object.entries(s.tensors ?? {})) pluginTensors.push({ name: `${name}/${k}`, tensor: t });
      }
      const pt = await encodeTensors(pluginTensors);
      await writeFile(join(tmp, 'plugins.bin'), pt.data);
      await writeFile(join(tmp, 'state.json'), JSON.stringify({ ...state, plugins: pluginJson, pluginSpecs: pt.specs }, null, 1));
    });
  }

  async loadState(dir: string): Promise<TrainerState> {
    const where = this.exists(dir);
    if (!where)
      throw new TricksError(`no checkpoint in ${dir}`, 'resume from a run directory that holds checkpoint/ (written after each epoch)');
    const state = JSON.parse(await readFile(join(where, 'state.json'), 'utf8')) as TrainerState;
    if (state.format !== CHECKPOINT_FORMAT)
      throw new TricksError(`${where}: checkpoint format ${state.format}, this version reads ${CHECKPOINT_FORMAT}`);
    return state;
  }

  async restore(dir: string, { model, optimizer, plugins }: Parameters<Checkpointer['restore']>[1]): Promise<TrainerState> {
    const where = this.exists(dir)!;
    const state = await this.loadState(dir);
    const saved = await loadModel(join(where, 'model'));
    try {
      if (saved.weights.length !== model.weights.length) {
        throw new TricksError(
          `${where}: the checkpoint's model has ${saved.weights.length} weights, the configured one ${model.weights.length}`,
          'resume with the same model and plugins',
        );
      }
      model.setWeights(saved.getWeights());
    } finally {
      saved.dispose();
    }
    const optMeta = JSON.parse(await readFile(join(where, 'optimizer.json'), 'utf8'));
    const slots = decodeTensors(await readFile(join(where, 'optimizer.bin')), optMeta.specs);
    const positions = new Map(variableNames(model).map((n, i) => [`#${i}`, n]));
    await optimizer.setWeights(
      Object.entries(slots).map(([name, tensor]) => {
        const m = /^(#\d+)(\/.*)$/.exec(name);
        return { name: m ? `${positions.get(m[1]) ?? m[1]}${m[2]}` : name, tensor };
      }),
    );
    tf.dispose(Object.values(slots));
    const pluginState = state.plugins as Record<string, { json: unknown; tensors: string[] }>;
    const specs = (state as unknown as { pluginSpecs: tf.io.WeightsManifestEntry[] }).pluginSpecs ?? [];
    const all = specs.length ? decodeTensors(await readFile(join(where, 'plugins.bin')), specs) : {};
    for (const [name, ps] of plugins) {
      const s = pluginState[name];
      if (!s) continue;
      const tensors: Record<string, tf.Tensor> = {};
      for (const k of s.tensors) tensors[k] = all[`${name}/${k}`];
      await ps.load({ json: s.json, tensors });
    }
    tf.dispose(Object.values(all));
    return state;
  }
}
