import { Command } from 'commander';
import { type PluginDefinition, listInstalled, load } from '@tricks/core';

interface Listed {
  name: string;
  package: string;
  description: string;
  options: Record<string, { type?: unknown; default?: unknown; description?: string }>;
}

export async function listPlugins(cwd = process.cwd()): Promise<{ listed: Listed[]; broken: { package: string; error: string }[] }> {
  const listed: Listed[] = [];
  const broken: { package: string; error: string }[] = [];
  for (const p of listInstalled('plugin', cwd)) {
    try {
      const { definition } = await load<PluginDefinition>(p.package, 'plugin', cwd);
      const props = (definition.schema?.properties ?? {}) as Record<string, Record<string, unknown>>;
      const options = Object.fromEntries(
        Object.entries(props).map(([k, s]) => [
          k,
          { type: s.type ?? s.enum ?? s.anyOf, default: s.default, description: s.description as string | undefined },
        ]),
      );
      listed.push({ name: definition.name, package: p.package, description: definition.description, options });
    } catch (e) {
      broken.push({ package: p.package, error: (e as Error).message.split('\n')[0] });
    }
  }
  return { listed, broken };
}

export function registerPluginsCommand(program: Command): void {
  program
    .command('plugins')
    .description('list every resolvable plugin with its description and options')
    .option('--json', 'print a JSON array of {name, package, description, options}')
    .action(async (f: { json?: boolean }) => {
      const { listed, broken } = await listPlugins();
      for (const b of broken) process.stderr.write(`warning: ${b.package} could not be loaded: ${b.error}\n`);
      if (f.json) {
        process.stdout.write(`${JSON.stringify(listed, null, 1)}\n`);
        return;
      }
      for (const p of listed) {
        process.stdout.write(`${p.name}  (${p.package})\n  ${p.description}\n`);
        for (const [k, o] of Object.entries(p.options)) {
          process.stdout.write(
            `    ${k}: ${JSON.stringify(o.type)}${o.default !== undefined ? ` = ${JSON.stringify(o.default)}` : ''}${o.description ? `  ${o.description}` : ''}\n`,
          );
        }
      }
    });
}
