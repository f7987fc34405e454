// The run context's types live in the contract's leaf module.
export type { TrainContext, EvalResult, PluginState } from '../contract.js';
