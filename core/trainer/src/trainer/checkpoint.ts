import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { TricksError } from '../hooks/errors.js';
import { completeDir, writeDirAtomic, writeFileAtomic } from '../io/atomic.js';
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
      await writeFileAtomic(join(tmp, 'optimizer.bin'), opt.data);
      await writeFileAtomic(
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
      await writeFileAtomic(join(tmp, 'plugins.bin'), pt.data);
      await writeFileAtomic(join(tmp, 'state.json'), JSON.stringify({ ...state, plugins: pluginJson, pluginSpecs: pt.specs }, null, 1));
    });
  }

  async loadState(dir: string): Promise<TrainerState> {
    const where = this.exists(dir);
    if (!where)
      throw new TricksError(`no checkpoint in ${dir}`, 'resume from a run directory that holds checkpoint/ (written after each epoch)');
    return part(where, 'state.json', (d) => {
      const s = json(d);
      if (s?.format !== CHECKPOINT_FORMAT) throw new Error(`checkpoint format ${s?.format}, this version reads ${CHECKPOINT_FORMAT}`);
      const bad = ['epoch', 'stepInEpoch', 'step'].filter((k) => !Number.isInteger(s[k]));
      bad.push(...['metrics', 'rng', 'tfRng', 'config', 'plugins'].filter((k) => typeof s[k] !== 'object' || !s[k]));
      if (bad.length) throw new Error(`${bad.join(', ')} missing or malformed`);
      return s as TrainerState;
    });
  }

  async restore(dir: string, { model, optimizer, plugins }: Parameters<Checkpointer['restore']>[1]): Promise<TrainerState> {
    const where = this.exists(dir)!;
    const state = await this.loadState(dir);
    const saved = await part(where, 'model/model.json', () => loadModel(join(where, 'model')));
    try {
      const [n, m] = [saved.weights.length, model.weights.length];
      if (n !== m)
        throw new TricksError(
          `${where}: the checkpoint's model has ${n} weights, the configured one ${m}`,
          'resume with the same model and plugins',
        );
      model.setWeights(saved.getWeights());
    } finally {
      saved.dispose();
    }
    const optSpecs = await part(where, 'optimizer.json', (d) => json(d).specs ?? Promise.reject(new Error('it has no "specs" list')));
    const positions = new Map(variableNames(model).map((n, i) => [`#${i}`, n]));
    await part(where, 'optimizer.bin', async (d) => {
      const slots = decodeTensors(d, optSpecs, join(where, 'optimizer.bin'), 'optimizer.json lists');
      await optimizer.setWeights(
        Object.entries(slots).map(([name, tensor]) => {
          const m = /^(#\d+)(\/.*)$/.exec(name);
          return { name: m ? `${positions.get(m[1]) ?? m[1]}${m[2]}` : name, tensor };
        }),
      );
      tf.dispose(Object.values(slots));
    });
    const pluginState = state.plugins as Record<string, { json: unknown; tensors: string[] }>;
    const specs = (state as unknown as { pluginSpecs: tf.io.WeightsManifestEntry[] }).pluginSpecs ?? [];
    const all = specs.length
      ? await part(where, 'plugins.bin', (d) => decodeTensors(d, specs, join(where, 'plugins.bin'), 'state.json lists'))
      : {};
    for (const [name, ps] of plugins) {
      const s = pluginState[name];
      if (!s) continue;
      const tensors: Record<string, tf.Tensor> = {};
      for (const k of s.tensors) tensors[k] = all[`${name}/${k}`];
      const load = async () => ps.load({ json: s.json, tensors });
      await part(where, 'state.json', () => load().catch((e: Error) => Promise.reject(new Error(`plugin ${name}: ${e.message}`))));
    }
    tf.dispose(Object.values(all));
    return state;
  }
}

const json = (d: Buffer) => JSON.parse(d.toString('utf8'));

/** Reads checkpoint file `f` and runs `use` on its bytes; any failure is one TricksError naming the file and what failed. */
async function part<T>(where: string, f: string, use: (data: Buffer) => T | Promise<T>): Promise<T> {
  const file = join(where, f);
  try {
    return await use(await readFile(file));
  } catch (e) {
    const { code, message } = e as Error & { code?: string };
    const first = message.split('\n')[0];
    throw new TricksError(
      `checkpoint file ${first.startsWith(where) ? first : `${file}: ${code === 'ENOENT' ? 'the file is missing' : e instanceof SyntaxError ? `not valid JSON (${first})` : first}`}`,
      'the checkpoint is damaged (a crash, a full disk or an edit while it was written): restore the run folder from a backup, or train again into a new --out',
    );
  }
}
