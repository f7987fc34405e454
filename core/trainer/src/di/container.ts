import 'reflect-metadata';
import * as tf from '@tensorflow/tfjs-core';
import { Container, ContainerModule } from 'inversify';
import { DefaultBackendService, type BackendService } from '../backends/select.js';
import { DatasetRegistry } from '../data/registry.js';
import { ShuffleSampler } from '../data/loader.js';
import { ConsoleLogger, type Logger } from '../io/logger.js';
import { crossEntropy } from '../losses/cross-entropy.js';
import type { GradientFunction, TrainingForward } from '../contract.js';
import { defaultInference } from '../trainer/evaluate.js';
import { ModelRegistry } from '../models/registry.js';
import { OptimizerRegistry } from '../optim/registry.js';
import { ScheduleRegistry } from '../optim/schedule.js';
import type { UserConfig } from '../plugin/config.js';
import type { PluginDefinition } from '../plugin/define.js';
import { resolveConfig, type ResolveOptions, type Resolution } from '../plugin/resolve-config.js';
import { NoCheckpointer } from '../trainer/checkpoint.js';
import { TfjsExporter } from '../trainer/exporter.js';
import { JsonlMetricsSink } from '../trainer/sinks.js';
import { Trainer } from '../trainer/trainer.js';
import { Rng } from '../util/rng.js';
import { TOKENS } from './tokens.js';
import { TricksError } from '../hooks/errors.js';

/** The default services. Every binding here can be replaced with `rebind` in a later module. */
export function coreModule(logger?: Logger): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(TOKENS.Logger).toConstantValue(logger ?? new ConsoleLogger(Boolean(process.env.TRICKS_VERBOSE)));
    bind(TOKENS.Backend)
      .toResolvedValue((l: Logger) => new DefaultBackendService(l), [TOKENS.Logger])
      .inSingletonScope();
    bind(TOKENS.Models).toConstantValue(new ModelRegistry());
    bind(TOKENS.Datasets).toConstantValue(new DatasetRegistry());
    bind(TOKENS.Optimizers).toConstantValue(new OptimizerRegistry());
    bind(TOKENS.Schedules).toConstantValue(new ScheduleRegistry());
    bind(TOKENS.Loss).toConstantValue(crossEntropy);
    bind(TOKENS.Gradients).toConstantValue(((f, vars) => tf.variableGrads(f, vars)) as GradientFunction);
    bind(TOKENS.Forward).toConstantValue(((model, x) => model.apply(x, { training: true })) as TrainingForward);
    bind(TOKENS.Inference).toConstantValue(defaultInference);
    bind(TOKENS.Sampler).toConstantValue(new ShuffleSampler());
    bind(TOKENS.Rng).toConstantValue((seed: number) => new Rng(seed));
    bind(TOKENS.MetricsSink).to(JsonlMetricsSink);
    bind(TOKENS.Checkpointer)
      .toResolvedValue((l: Logger) => new NoCheckpointer(l), [TOKENS.Logger])
      .inSingletonScope();
    bind(TOKENS.Exporter).to(TfjsExporter).inSingletonScope();
    bind(TOKENS.Trainer).to(Trainer).inSingletonScope();
  });
}

export interface CreateTrainerOptions extends ResolveOptions {
  /** Extra modules loaded after the plugins' (the user's own rebinding). */
  modules?: ContainerModule[];
  logger?: Logger;
  /**
   * Built-in plugins of the products around the trainer (data formats, the model zoo, the wasm backend,
   * export formats, the report, progress output): their modules load before any plugin's, and they tap
   * hooks before the user's plugins. The CLI passes the standard set (@tricks/lab's standardBuiltins).
   */
  builtins?: PluginDefinition[];
}

/** A container with the core services, the built-ins' modules, each plugin's, then the user's. */
export interface Composition {
  container: Container;
  resolution: Resolution;
  /** The registries and services a command uses without training (tricks eval, export, model list, bench). */
  services(): Services;
}

export interface Services {
  models: ModelRegistry;
  datasets: DatasetRegistry;
  backend: BackendService;
  logger: Logger;
}

/**
 * Resolves the config and builds the container (core module, built-ins' modules, plugins' modules, the
 * user's modules). Commands that need services without training (eval, export, model list) use it.
 */
export async function compose(user: UserConfig, opts: CreateTrainerOptions = {}): Promise<Composition> {
  const resolution: Resolution = await resolveConfig(user, opts);
  const container = new Container();
  container.load(coreModule(opts.logger));
  container.bind(TOKENS.Config).toConstantValue(resolution.config);
  for (const b of opts.builtins ?? []) for (const m of b.modules?.({}) ?? []) await container.loadAsync(m);
  const owners = new Map<symbol, string>();
  for (const { definition, resolved } of resolution.plugins) {
    for (const m of definition.modules?.(resolved.options) ?? [])
      await loadTracked(container, m, `plugin ${definition.name} (${resolved.source})`, owners);
  }
  for (const m of [...(user.modules ?? []), ...(opts.modules ?? [])]) await loadTracked(container, m, 'your config', owners);
  const services = (): Services => ({
    models: container.get<ModelRegistry>(TOKENS.Models),
    datasets: container.get<DatasetRegistry>(TOKENS.Datasets),
    backend: container.get<BackendService>(TOKENS.Backend),
    logger: container.get<Logger>(TOKENS.Logger),
  });
  return { container, resolution, services };
}

/**
 * The composition root: resolves the config (presets, plugins, options), builds the container from
 * the core module, each plugin's modules, then the user's, and returns the trainer with the plugins
 * applied. With compose(), the only place that calls container.get.
 */
export async function createTrainer(user: UserConfig, opts: CreateTrainerOptions = {}): Promise<Trainer> {
  const { container, resolution } = await compose(user, opts);
  const trainer = container.get<Trainer>(TOKENS.Trainer);
  trainer.use(resolution.plugins, opts.builtins);
  return trainer;
}

/** Core services that take one binding: a second `bind` would make them ambiguous. MetricsSink is multi-bound. */
const SINGLE_SERVICES = new Set<symbol>(Object.values(TOKENS).filter((t) => t !== TOKENS.MetricsSink));

/**
 * Loads a module and records which services it replaces (rebind, or unbind then bind). Two different
 * packages replacing the same service is a conflict (the second would silently win): a clear error
 * names both. A module that `bind`s a second binding of a single-binding core service gets an error
 * naming it too (inversify would only fail later, with "ambiguous bindings"). Your config's modules
 * load last and may replace anything.
 */
async function loadTracked(container: Container, module: ContainerModule, owner: string, owners: Map<symbol, string>): Promise<void> {
  const claim = (id: symbol) => {
    const prev = owners.get(id);
    if (prev && prev !== owner && owner !== 'your config') {
      throw new TricksError(
        `${owner} and ${prev} both replace the service ${id.description}`,
        'use only one of them, or rebind the service yourself in your config file (modules), which takes precedence',
      );
    }
    owners.set(id, owner);
  };
  const spy = new ContainerModule(async (options) => {
    const rebind = <T>(id: symbol) => {
      claim(id);
      return options.rebind<T>(id);
    };
    const unbind = (id: symbol) => {
      if (typeof id === 'symbol') claim(id);
      return options.unbind(id);
    };
    const bind = <T>(id: symbol) => {
      if (typeof id === 'symbol' && SINGLE_SERVICES.has(id) && options.isBound(id)) {
        const prev = owners.get(id);
        throw new TricksError(
          `${owner} binds the service ${id.description} a second time (it is bound by ${prev ?? '@tricks/core'})`,
          `replace it with rebind(TOKENS.${id.description?.replace(/^tricks\./, '')}) or extend it with onActivation; only metrics sinks take several bindings`,
        );
      }
      return options.bind<T>(id);
    };
    await module.load({
      ...options,
      bind: bind as typeof options.bind,
      rebind: rebind as typeof options.rebind,
      rebindAsync: (async (id: symbol) => rebind(id)) as typeof options.rebindAsync,
      unbind: unbind as typeof options.unbind,
      unbindAsync: (async (id: symbol) => unbind(id)) as typeof options.unbindAsync,
    });
  });
  await container.loadAsync(spy);
}
