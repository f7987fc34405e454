export { type ScaffoldKind, scaffold } from './scaffold.js';
export { type DepsMode, type DepsSource, packTricks, workspaceRoot } from './deps.js';
