import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TricksError } from '@tricks/core';

/** The file an export leaves in its folder (`tricks export --out`, a run's OUT/export): the mark of a folder a later export may replace. */
export const EXPORT_MARK = '.tricks-export.json';

/**
 * Export writes only into a folder of its own: a missing or empty one, or one an earlier export wrote
 * (it has EXPORT_MARK). A file, a run folder or anything else that is not empty is refused before any work.
 */
export function claimExportFolder(out: string): void {
  if (existsSync(out) && !statSync(out).isDirectory())
    throw new TricksError(`--out ${out} is a file, not a folder`, 'give --out a folder of its own for the export');
  if (!existsSync(out) || !readdirSync(out).length || existsSync(join(out, EXPORT_MARK))) return;
  const entries = readdirSync(out);
  throw new TricksError(
    `--out ${out} is not empty and was not written by tricks export (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''})`,
    'export into a new or empty folder, e.g. --out runs/x/deploy (an earlier export is replaced)',
  );
}
