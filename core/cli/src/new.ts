import { relative } from 'node:path';
import { Command } from 'commander';
import { scaffold, type ScaffoldKind } from '@tricks/create';

interface NewFlags {
  dir?: string;
  description?: string;
  force?: boolean;
}

function action(kind: ScaffoldKind) {
  return (name: string, f: NewFlags) => {
    const s = scaffold({ kind, name, dir: f.dir, description: f.description, force: f.force });
    const rel = relative(process.cwd(), s.dir) || '.';
    const out = process.stdout;
    out.write(`created ${kind} ${s.packageName} in ${rel}/\n`);
    for (const file of s.files) out.write(`  ${file}\n`);
    out.write(`\nnext:\n  cd ${rel}\n  npm install\n  npm run build\n  npm test\n  npm publish\n`);
    const flag = kind === 'plugin' ? `--plugin ${s.shortNameResolves ? s.name : s.packageName}` : `--preset ${s.shortNameResolves ? s.name : s.packageName}`;
    out.write(`\nthen, in a project that installs it: npx tricks train ${flag}\n`);
    if (!s.shortNameResolves) {
      out.write(`(${s.packageName} is not named @tricks/${kind}-${s.name} or tricks-${kind}-${s.name}, so a config names it by its package name)\n`);
    }
  };
}

/** `tricks new plugin NAME` and `tricks new preset NAME`: a package ready to build, test and publish. */
export function registerNewCommand(program: Command): void {
  const cmd = program.command('new').description('create a plugin or preset package (package.json, src, tests with the shared runner, README)');
  for (const kind of ['plugin', 'preset'] as const) {
    cmd
      .command(`${kind} <name>`)
      .description(
        kind === 'plugin'
          ? 'a plugin package: NAME becomes tricks-plugin-NAME (or give a full package name, e.g. @acme/tricks-plugin-NAME)'
          : 'a preset package: NAME becomes tricks-preset-NAME (or give a full package name)',
      )
      .option('--dir <dir>', 'where to write it (default: ./<package name without scope>)')
      .option('--description <text>', 'the package description')
      .option('--force', 'write into a non-empty directory, replacing the files the scaffold writes')
      .action(action(kind));
  }
}
