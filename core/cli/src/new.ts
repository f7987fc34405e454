import { relative } from 'node:path';
import { Command, Option } from 'commander';
import { scaffold, type DepsMode, type ScaffoldKind } from '@tricks/create';

interface NewFlags {
  dir?: string;
  description?: string;
  force?: boolean;
  deps?: DepsMode;
}

function action(kind: ScaffoldKind) {
  return (name: string, f: NewFlags) => {
    const s = scaffold({ kind, name, dir: f.dir, description: f.description, force: f.force, deps: f.deps });
    const rel = relative(process.cwd(), s.dir) || '.';
    const out = process.stdout;
    out.write(`created ${kind} ${s.packageName} in ${rel}/\n`);
    for (const file of s.files) out.write(`  ${file}\n`);
    const packed = Object.keys(s.tarballs);
    if (s.deps === 'workspace') {
      const root = relative(process.cwd(), s.workspaceRoot!) || '.';
      out.write(
        `\n@tricks/* dependencies: from the npm workspace at ${root}/ (its \`npm install\` links them; the package is one of its workspaces)\n`,
      );
      out.write(
        `\nnext:\n  cd ${root}\n  npm install\n  cd ${relative(s.workspaceRoot!, s.dir)}\n  npm test          (builds, then runs the tests)\n  npm publish\n`,
      );
    } else {
      if (s.deps === 'tarballs') {
        out.write(
          `\n@tricks/* dependencies: not on a public registry, so ${packed.length} tarballs were packed from this installation into ${rel}/vendor/tricks/ (${packed.join(', ')});\n`,
        );
        out.write(
          `package.json names them by file: specs, and its peerDependencies keep the version range. With a registry that has them, scaffold with --deps registry.\n`,
        );
      } else {
        out.write(`\n@tricks/* dependencies: version ranges, installed from your npm registry\n`);
      }
      out.write(`\nnext:\n  cd ${rel}\n  npm install\n  npm run build\n  npm test\n  npm publish\n`);
      if (s.deps === 'tarballs' && kind === 'preset') {
        out.write(`(before npm publish, set its dependencies back to version ranges: a file: spec does not install elsewhere)\n`);
      }
    }
    const flag =
      kind === 'plugin'
        ? `--plugin ${s.shortNameResolves ? s.name : s.packageName}`
        : `--preset ${s.shortNameResolves ? s.name : s.packageName}`;
    out.write(`\nthen, in a project that installs it: npx tricks train ${flag}\n`);
    if (!s.shortNameResolves) {
      out.write(
        `(${s.packageName} is not named @tricks/${kind}-${s.name} or tricks-${kind}-${s.name}, so a config names it by its package name)\n`,
      );
    }
  };
}

/** `tricks new plugin NAME` and `tricks new preset NAME`: a package ready to build, test and publish. */
export function registerNewCommand(program: Command): void {
  const cmd = program
    .command('new')
    .description('create a plugin or preset package (package.json, src, tests with the shared runner, README)');
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
      .addOption(
        new Option(
          '--deps <source>',
          'where its @tricks/* dependencies come from: registry (version ranges), tarballs (packed into vendor/tricks/, file: specs), or auto: ranges in an npm workspace or when installed from a registry, tarballs from a source checkout',
        )
          .choices(['auto', 'registry', 'tarballs'])
          .default('auto'),
      )
      .action(action(kind));
  }
}
