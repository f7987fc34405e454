export { checkpointBuiltin } from './builtin.js';
export { claimRunFolder, type ClaimOptions, LOCK, lockRunFolder, RUN_ENTRIES } from './guard.js';
export { fsync, MANIFEST, type Manifest, readManifest, seal, verify } from './manifest.js';
export { DirCheckpointer } from './store.js';
