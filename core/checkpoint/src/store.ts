import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  CHECKPOINT_FORMAT,
  decodeTensors,
  encodeTensors,
  loadModel,
  saveModel,
  TricksError,
  writeError,
  type Checkpointer,
  type Logger,
  type TrainerState,
} from '@tricks/core';
import { fsync, MANIFEST, readManifest, seal, verify, type Manifest } from './manifest.js';

/** Engine names of the model's weights, in model.weights order (which a change of a layer's trainable flag reorders). */
function variableNames(model: LayersModel): string[] {
  return model.weights.map((w) => (w.read() as tf.Variable).name);
}

/** Engine name -> "@layer.weight": a weight's place in its layer, stable whatever the trainable flags (finetune freezes layers). */
function layerKeys(model: LayersModel): Map<string, string> {
  return new Map(model.layers.flatMap((l, li) => l.weights.map((w, wi) => [(w.read() as tf.Variable).name, `@${li}.${wi}`] as const)));
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

let counter = 0;
const tmpPrefix = (dir: string) => `.${basename(dir)}.tmp-`;
const tmpsOf = (dir: string) =>
  existsSync(dirname(dir))
    ? readdirSync(dirname(dir))
        .filter((n) => n.startsWith(tmpPrefix(dir)))
        .map((n) => join(dirname(dir), n))
    : [];
const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();
const json = (d: Buffer) => JSON.parse(d.toString('utf8'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DAMAGED_HINT =
  'the checkpoint is damaged (a crash, a full disk or an edit while it was written): restore the run folder from a backup, or train again into a new --out';

interface Generation {
  path: string;
  manifest?: Manifest;
  fault?: string;
}

/**
 * OUT/checkpoint/ in generations. Each holds model/ (tfjs LayersModel), optimizer.json + optimizer.bin (slots),
 * plugins.bin (plugin tensors), state.json, and last manifest.json (generation number, SHA-256 of every file).
 * A save fills `.checkpoint.tmp-*`, seals it (fsync, manifest), moves the current generation to checkpoint.old
 * and renames the new one into place: at every moment one complete, sealed generation is on disk, and the
 * previous one stays as checkpoint.old. On resume the newest intact generation wins (checksums verified);
 * a damaged newer one is set aside as checkpoint.damaged with a warning, as Keras's BackupAndRestore falls back.
 */
export class DirCheckpointer implements Checkpointer {
  constructor(private readonly logger?: Logger) {}

  /** The newest generation folder on disk (not yet verified), or undefined when there is none. */
  exists(dir: string): string | undefined {
    const sealed = tmpsOf(dir).filter((t) => existsSync(join(t, MANIFEST)));
    return [dir, `${dir}.old`, ...sealed].find(isDir);
  }

  async save(dir: string, { model, optimizer, state, plugins }: Parameters<Checkpointer['save']>[1]): Promise<void> {
    const parent = dirname(dir);
    const old = `${dir}.old`;
    await mkdir(parent, { recursive: true });
    const previous = await Promise.all([dir, old].map((p) => readManifest(p).catch(() => undefined)));
    const generation = 1 + Math.max(0, ...previous.map((m) => m?.generation ?? 0));
    const tmp = join(parent, `${tmpPrefix(dir)}${process.pid}-${Date.now()}-${counter++}`);
    await mkdir(tmp);
    try {
      await saveModel(model, join(tmp, 'model'));
      // Slots are keyed by tfjs variable names, which get suffixes when several models live in one
      // process; store them under the weight's position instead, so any process can restore them.
      const names = variableNames(model);
      const keys = layerKeys(model);
      const slots = (await optimizer.getWeights()).map(({ name, tensor }) => ({
        name: renameSlot(name, names, (i) => keys.get(names[i]!)!),
        tensor,
      }));
      const opt = await encodeTensors(slots);
      await writeFile(join(tmp, 'optimizer.bin'), opt.data);
      const className = (optimizer.constructor as { className?: string }).className;
      await writeFile(join(tmp, 'optimizer.json'), JSON.stringify({ className, config: optimizer.getConfig(), specs: opt.specs }));
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
      await seal(tmp, { generation, epoch: state.epoch, step: state.step });
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw writeError(e, dir);
    }
    // checkpoint is complete while checkpoint.old goes; checkpoint.old while checkpoint moves; the sealed tmp throughout.
    if (existsSync(dir)) {
      await rm(old, { recursive: true, force: true });
      await rename(dir, old);
      await fsync(parent);
    }
    const pause = Number(process.env.TRICKS_TEST_CHECKPOINT_PAUSE_MS);
    if (pause > 0) {
      // test-only: the fault-injection suite kills the process in this window
      process.stderr.write(`test pause: ${tmp} sealed, ${dir} not yet in place\n`);
      await sleep(pause);
    }
    await rename(tmp, dir);
    await fsync(parent);
  }

  /**
   * Finds the newest intact generation and puts it in place as `dir` (a sealed tmp folder a kill left is
   * renamed in, a damaged newer one is moved to checkpoint.damaged), then removes unfinished tmp folders.
   * Undefined when there is no checkpoint at all; a TricksError naming the file when none is intact.
   */
  async recover(dir: string): Promise<string | undefined> {
    const old = `${dir}.old`;
    const tmps = tmpsOf(dir).filter(isDir);
    const gens: Generation[] = [];
    for (const path of [dir, old, ...tmps].filter(isDir)) {
      const g: Generation = { path };
      g.manifest = await readManifest(path).catch((e: Error) => {
        g.fault = `${join(path, MANIFEST)}: ${e.message}`;
        return undefined;
      });
      gens.push(g);
    }
    const sealed = gens.filter((g) => g.manifest).sort((a, b) => b.manifest!.generation - a.manifest!.generation);
    const damaged: Generation[] = gens.filter((g) => g.fault);
    let win: Generation | undefined;
    for (const g of sealed) {
      g.fault = await verify(g.path, g.manifest!);
      if (!g.fault) {
        win = g;
        break;
      }
      damaged.push(g);
    }
    // written before manifests (or its manifest deleted): loaded unverified
    const legacy = gens.find((g) => !g.manifest && !g.fault && !tmps.includes(g.path) && existsSync(join(g.path, 'state.json')));
    if (!win && legacy) {
      win = legacy;
      this.logger?.warn(`${legacy.path} has no ${MANIFEST} (written by an older version): its files cannot be verified`);
    }
    if (!win) {
      if (damaged.length) throw new TricksError(`checkpoint file ${damaged[0].fault}`, DAMAGED_HINT);
      return undefined;
    }
    const at = (g: Generation) => (g.manifest ? `${g.manifest.step} steps in, next epoch ${g.manifest.epoch + 1}` : 'unverified');
    const newer = damaged.filter((d) => !d.manifest || !win.manifest || d.manifest.generation > win.manifest.generation);
    if (newer.length)
      this.logger?.warn(
        `the newest checkpoint is damaged: ${newer[0].fault}; resuming from the previous one, ${win.path} (${at(win)}); the damaged one is kept as ${dir}.damaged`,
      );
    if (win.path !== dir) {
      if (existsSync(dir)) {
        if (damaged.some((d) => d.path === dir)) {
          await rm(`${dir}.damaged`, { recursive: true, force: true });
          await rename(dir, `${dir}.damaged`);
        } else {
          await rm(old, { recursive: true, force: true });
          await rename(dir, old);
        }
      }
      await rename(win.path, dir);
    } else if (damaged.some((d) => d.path === old)) {
      await rm(`${dir}.damaged`, { recursive: true, force: true });
      await rename(old, `${dir}.damaged`);
    }
    // what is left of interrupted saves: unfinished or superseded tmp folders
    for (const t of tmpsOf(dir)) await rm(t, { recursive: true, force: true });
    await fsync(dirname(dir));
    return dir;
  }

  async loadState(dir: string): Promise<TrainerState> {
    const where = await this.recover(dir);
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
    const state = await this.loadState(dir);
    const where = dir;
    const saved = await part(where, 'model/model.json', () => loadModel(join(where, 'model')));
    try {
      const [n, m] = [saved.weights.length, model.weights.length];
      if (n !== m || saved.layers.length !== model.layers.length)
        throw new TricksError(
          `${where}: the checkpoint's model has ${n} weights, the configured one ${m}`,
          'resume with the same model and plugins',
        );
      // layer by layer: model.weights' order depends on the layers' trainable flags, each layer's own does not
      model.layers.forEach((l, i) => l.setWeights(saved.layers[i]!.getWeights()));
    } finally {
      saved.dispose();
    }
    const optSpecs = await part(where, 'optimizer.json', (d) => json(d).specs ?? Promise.reject(new Error('it has no "specs" list')));
    // "@layer.weight" keys; "#i" (a position in model.weights) in checkpoints written before them
    const positions = new Map([
      ...variableNames(model).map((n, i) => [`#${i}`, n] as const),
      ...[...layerKeys(model)].map(([n, k]) => [k, n] as const),
    ]);
    await part(where, 'optimizer.bin', async (d) => {
      const slots = decodeTensors(d, optSpecs, join(where, 'optimizer.bin'), 'optimizer.json lists');
      await optimizer.setWeights(
        Object.entries(slots).map(([name, tensor]) => {
          const m = /^(#\d+|@\d+\.\d+)(\/.*)$/.exec(name);
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

/** Reads checkpoint file `f` and runs `use` on its bytes; any failure is one TricksError naming the file and what failed. */
async function part<T>(where: string, f: string, use: (data: Buffer) => T | Promise<T>): Promise<T> {
  const file = join(where, f);
  try {
    return await use(await readFile(file));
  } catch (e) {
    if (e instanceof TricksError) throw e;
    const { code, message } = e as Error & { code?: string };
    const first = message.split('\n')[0];
    throw new TricksError(
      `checkpoint file ${first.startsWith(where) ? first : `${file}: ${code === 'ENOENT' ? 'the file is missing' : e instanceof SyntaxError ? `not valid JSON (${first})` : first}`}`,
      DAMAGED_HINT,
    );
  }
}
