import { join, resolve } from 'node:path';
import { TricksError, type UserConfig, type LadderStep, type PluginItem, type PresetDefinition, loadPreset } from '@tricks/core';

/** One training run of an ablation: a ladder step (0-based) of a preset, with one seed. */
export interface RunSpec {
  /** Unique and filesystem-safe, e.g. "s2-autoaugment-seed1"; also the name of its folder. */
  id: string;
  preset: string;
  /** 0-based rung of the preset's ladder; the run uses every rung up to this one. */
  ladderStep: number;
  stepName: string;
  /** What this rung adds to the previous one ("baseline" for the first). */
  trick: string;
  seed: number;
  /** The user's config (flags, config file) applied over the preset. */
  overrides: UserConfig;
  /** The run's output folder: checkpoint/, result.json, report.html, model/. */
  out: string;
  /** Ids of runs that must finish first (a distillation step waits for its teacher). */
  dependsOn?: string[];
  /** "teacher" for the teacher a distillation rung needs; undefined for ladder runs. */
  role?: 'teacher';
}

export interface PlanOptions {
  preset: string;
  /** Seeds per rung: seeds base, base+1, ... (base = overrides.seed ?? 0). */
  seeds: number;
  overrides: UserConfig;
  /** The ablation's folder; runs go to OUT/runs/<id>. */
  out: string;
  /** A trained teacher (model dir or run dir) for distillation rungs; when absent, the plan trains one. */
  teacher?: string;
  cwd?: string;
}

const pluginName = (p: PluginItem) => (typeof p === 'string' ? p : p[0]);
const pluginOptions = (p: PluginItem) => (typeof p === 'string' ? {} : ((p[1] as Record<string, unknown>) ?? {}));
export const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '') || 'step';

/** "autoaugment, label-smoothing(epsilon=0.1), schedule=cosine": what a rung adds, for tables. */
export function describeStep(step: LadderStep, index: number): string {
  const parts: string[] = [];
  for (const p of step.plugins ?? []) {
    const o = Object.entries(pluginOptions(p)).filter(([k]) => k !== 'teacher' && k !== 'teacherModel');
    parts.push(
      o.length
        ? `${pluginName(p)}(${o.map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ')})`
        : pluginName(p),
    );
  }
  for (const [k, v] of Object.entries(step.settings ?? {})) {
    let val = JSON.stringify(v);
    if (typeof v === 'object' && v !== null && 'name' in v) {
      const { name, ...rest } = v as { name: string; [k: string]: unknown };
      const flat = Object.entries(rest).flatMap(([k, x]) =>
        typeof x === 'object' && x !== null && !Array.isArray(x) ? Object.entries(x).map(([k2, y]) => [k2, y] as const) : [[k, x] as const],
      );
      val = flat.length ? `${name}(${flat.map(([k, x]) => `${k}=${JSON.stringify(x)}`).join(', ')})` : name;
    }
    parts.push(`${k}=${val}`);
  }
  return parts.length ? parts.join(', ') : index === 0 ? 'baseline' : '(nothing)';
}

/** Loads a preset and returns its definition, with a clear error when it has no ladder. */
export async function loadLadder(preset: string, cwd = process.cwd()): Promise<{ definition: PresetDefinition; ladder: LadderStep[] }> {
  const { definition } = await loadPreset(preset, cwd);
  const ladder = definition.ladder ?? [];
  if (!ladder.length) {
    throw new TricksError(
      `preset ${definition.name} has no ablation ladder`,
      'use a preset with a `ladder` (baseline, cifar100-resnet18, bag-of-tricks-resnet50, mobile, fashion-mnist)',
    );
  }
  return { definition, ladder };
}

/** The kd entry of a rung that names a teacher model to train (`teacherModel`) but no `teacher`. */
function teacherNeed(step: LadderStep): { name: string; options?: Record<string, unknown> } | undefined {
  const kd = (step.plugins ?? []).find((p) => pluginName(p) === 'kd' || pluginName(p) === '@tricks/plugin-kd');
  if (!kd) return undefined;
  const o = pluginOptions(kd);
  if (o.teacher) return undefined;
  const tm = o.teacherModel as { name: string; options?: Record<string, unknown> } | undefined;
  if (!tm?.name)
    throw new TricksError(
      `ladder step "${step.name}": plugin kd has neither "teacher" nor "teacherModel"`,
      'give kd a teacherModel ({name}) for the ablation to train, or pass --teacher DIR',
    );
  return tm;
}

/** The user's plugin list with kd's `teacher` set (kept if the user gave one). */
function withTeacher(plugins: PluginItem[], teacher: string): PluginItem[] {
  const i = plugins.findIndex((p) => pluginName(p) === 'kd');
  if (i < 0) return [...plugins, ['kd', { teacher }]];
  const p = plugins[i];
  const options = { teacher, ...pluginOptions(p) };
  const merged: PluginItem = Array.isArray(p) && p.length > 2 ? [pluginName(p), options, p[2] as string] : [pluginName(p), options];
  return plugins.map((q, j) => (j === i ? merged : q));
}

/**
 * One run per ladder step x seed, in ladder order (all seeds of a rung together). When a rung adds
 * distillation (kd with `teacherModel` and no `teacher`) and no teacher is given, a teacher run comes
 * first: the recipe of the rung before the kd rung with the teacher's model, seed `base`; the kd rungs depend
 * on it. The teacher is fed the student's batches, so it must be trained on the same inputs (normalize, input
 * size): rung 1's recipe without the student's augment plugin gave a teacher that saw other pixel scales, and a
 * student that collapsed to 12 %. An architecture plugin before kd (se-block) is in the teacher too: kd then
 * loads the teacher's saved topology instead of rebuilding `teacherModel`. The kd rung's `teacherSettings`
 * (more epochs, more images) apply to the teacher run only, over the user's overrides (a teacher on all images
 * while --limit-train limits the students).
 */
export async function planAblation(opts: PlanOptions): Promise<RunSpec[]> {
  if (!Number.isInteger(opts.seeds) || opts.seeds < 1) throw new TricksError(`--seeds ${opts.seeds}: must be an integer >= 1`);
  const { ladder } = await loadLadder(opts.preset, opts.cwd);
  const out = resolve(opts.out);
  const base = opts.overrides.seed ?? 0;
  const specs: RunSpec[] = [];
  let teacherId: string | undefined;
  let teacherDir = opts.teacher ? resolve(opts.cwd ?? process.cwd(), opts.teacher) : undefined;
  const width = String(ladder.length).length;
  ladder.forEach((step, i) => {
    const need = teacherNeed(step);
    if (step.teacherSettings && !need && !opts.teacher)
      throw new TricksError(
        `ladder step "${step.name}": teacherSettings, but the step adds no kd with a teacherModel (there is no teacher run to apply them to)`,
        'move teacherSettings to the rung that adds kd with a teacherModel, or remove them',
      );
    if (need && !teacherDir) {
      if (i === 0) {
        throw new TricksError(
          `ladder step "${step.name}": kd with a teacherModel cannot be the first rung (the teacher trains the rung before it)`,
          'put kd in a later rung, or pass --teacher DIR',
        );
      }
      teacherId = 'teacher';
      teacherDir = join(out, 'runs', teacherId);
      const ts = step.teacherSettings ?? {};
      const changed = Object.entries(ts).map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : v}`);
      specs.push({
        id: teacherId,
        preset: opts.preset,
        ladderStep: i - 1,
        stepName: 'teacher',
        trick: `teacher ${need.name} (rung ${i} recipe${changed.length ? `, ${changed.join(', ')}` : ''})`,
        seed: base,
        overrides: {
          ...opts.overrides,
          ...ts,
          ...(ts.limit ? { limit: { ...opts.overrides.limit, ...ts.limit } } : {}),
          model: { name: need.name, options: need.options },
          seed: base,
        },
        out: teacherDir,
        role: 'teacher',
      });
    }
    const usesKd = ladder.slice(0, i + 1).some((s) => teacherNeed(s));
    for (let k = 0; k < opts.seeds; k++) {
      const id = `s${String(i + 1).padStart(width, '0')}-${slug(step.name)}-seed${base + k}`;
      const overrides: UserConfig = { ...opts.overrides, seed: base + k };
      if (usesKd && teacherDir) overrides.plugins = withTeacher(opts.overrides.plugins ?? [], teacherDir);
      specs.push({
        id,
        preset: opts.preset,
        ladderStep: i,
        stepName: step.name,
        trick: describeStep(step, i),
        seed: base + k,
        overrides,
        out: join(out, 'runs', id),
        ...(usesKd && teacherId ? { dependsOn: [teacherId] } : {}),
      });
    }
  });
  return specs;
}
