import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultBackendService } from '../src/backends/select.js';
import { MemoryLogger } from '../src/io/logger.js';
import type { UserConfig } from '../src/plugin/config.js';
import { tinyConfig } from '../src/testing.js';

let ready: Promise<string> | undefined;
export const testBackend = () => (ready ??= new DefaultBackendService(new MemoryLogger()).select(process.env.TRICKS_TEST_BACKEND ?? 'wasm'));

export const tmp = (prefix = 'tricks-core-') => mkdtempSync(join(tmpdir(), prefix));

/** The shared tiny run (core/src/testing.ts) with its own output directory. */
export const tiny = (over: UserConfig = {}): UserConfig => tinyConfig({ out: tmp(), ...over });
