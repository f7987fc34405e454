import type { Command } from 'commander';
import { TricksError, resolveConfig, type DataOptions, type DatasetRegistry, type UserConfig } from '@tricks/core';
import { cliServices } from './services.js';
import { int } from './flags.js';

/** Commander's collector for a repeatable option. */
export const collect = (v: string, prev: string[]) => [...prev, v];

/** The data flags of train, eval, ablate, sweep and augment-preview. */
export interface DataFlags {
  dataOption?: string[];
  imageSize?: number;
}

/** Adds `--data-option key=value` (repeatable) and, unless told not to, `--image-size N`. */
export function addDataFlags(cmd: Command, o: { imageSize?: boolean } = {}): Command {
  cmd.option(
    '--data-option <key=value>',
    'a dataOptions entry of the data format, the value as JSON or a string (repeatable), e.g. resize=contain, cropPct=1',
    collect,
    [],
  );
  if (o.imageSize !== false)
    cmd.option(
      '--image-size <n>',
      'image side for data that is resized (folder:DIR): training images cover NxN (random crops: the augment plugin), ' +
        'validation images get the shorter side N/0.875 and a centre crop N (torchvision: 256, then 224)',
      int('--image-size', 1, 4096),
    );
  return cmd;
}

/**
 * `--data-option` entries as dataOptions: `key=value`, the value parsed as JSON when it is JSON (224, [224,192],
 * true), as a number when it reads as one (.875), else kept as a string (contain).
 */
export function parseDataOptions(list: string[] = []): DataOptions {
  const out: DataOptions = {};
  for (const kv of list) {
    const eq = kv.indexOf('=');
    const key = kv.slice(0, eq).trim();
    if (eq < 1 || !/^[A-Za-z_][\w]*$/.test(key))
      throw new TricksError(
        `option --data-option: "${kv}" is not key=value`,
        'for example --data-option resize=contain or --data-option size=[224,192]',
      );
    const v = kv.slice(eq + 1);
    try {
      out[key] = JSON.parse(v);
    } catch {
      out[key] = v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
    }
  }
  return out;
}

/** The dataOptions the flags give: `--data-option` entries, and `--image-size N` as `size: N`. */
export function dataOptionsFromFlags(f: DataFlags): DataOptions {
  const o = parseDataOptions(f.dataOption);
  if (f.imageSize !== undefined) {
    if (o.size !== undefined) throw new TricksError('--image-size and --data-option size both give the image size', 'give one of them');
    o.size = f.imageSize;
  }
  return o;
}

/**
 * Checks the options the command line gives against the format of `spec`: each must be one that format reads
 * (a config file's or a preset's dataOptions written for another format are let through by the registry).
 */
export function checkDataFlags(datasets: DatasetRegistry, spec: string, f: DataFlags): void {
  const given = dataOptionsFromFlags(f);
  if (!Object.keys(given).length) return;
  const name = spec.includes(':') ? spec.slice(0, spec.indexOf(':')) : spec;
  const own = datasets.optionsOf(name);
  if (f.imageSize !== undefined && own && !own.includes('size')) {
    const resizable = datasets
      .list()
      .map((d) => d.name)
      .filter((n) => datasets.optionsOf(n)?.includes('size'));
    throw new TricksError(
      `--image-size: the images of ${name} are not resized (its options: ${own.join(', ')})`,
      `--image-size applies to ${resizable.map((n) => `${n}:DIR`).join(', ') || 'formats with a size option'}; drop it for ${name}`,
    );
  }
  datasets.checkOptions(spec, given, {
    strict: true,
    what: (k) => (k === 'size' && f.imageSize !== undefined ? '--image-size' : `--data-option ${k}`),
  });
}

/** checkDataFlags for a command that does not build a trainer (ablate, sweep): resolves the data spec and the registry. */
export async function checkDataFlagsFor(user: UserConfig, f: DataFlags): Promise<void> {
  if (!f.dataOption?.length && f.imageSize === undefined) return;
  const { config } = await resolveConfig(user);
  const { datasets } = await cliServices({ user });
  checkDataFlags(datasets, config.data, f);
}
