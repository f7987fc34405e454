export { type ScaffoldKind, scaffold } from './scaffold.js';
