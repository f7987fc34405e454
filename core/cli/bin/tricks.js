#!/usr/bin/env node
import { main } from '../dist/src/main.js';

main(process.argv).then(
  (code) => process.exit(code ?? 0),
  () => process.exit(1),
);
