import { expect } from 'chai';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig, parsePluginFlag } from '../src/plugin/resolve-config.js';
import { validate } from '../src/plugin/validate.js';
import { TricksError } from '../src/hooks/errors.js';
import { tmp } from './helpers.js';

/** A project dir with plugin and preset packages in node_modules, written as plain ESM. */
function project(): string {
  const dir = tmp('tricks-proj-');
  writeFileSync(join(dir, 'package.json'), '{"name":"p","type":"module"}');
  const pkg = (name: string, body: string) => {
    const d = join(dir, 'node_modules', ...name.split('/'));
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'package.json'), JSON.stringify({ name, type: 'module', exports: './index.js' }));
    writeFileSync(join(d, 'index.js'), body);
  };
  const plugin = (n: string) =>
    `export default { name: '${n}', description: '${n}', schema: { type: 'object', additionalProperties: false, properties: { alpha: { type: 'number', default: 1 }, beta: { type: 'number' } } }, apply() {} };`;
  for (const n of ['a', 'b', 'c', 'd', 'e']) pkg(`tricks-plugin-${n}`, plugin(n));
  pkg(
    'tricks-preset-one',
    `export default { name: 'one', description: '', plugins: ['a', ['b', { alpha: 2 }]], settings: { epochs: 3, model: { name: 'resnet20', options: { width: 4 } } } };`,
  );
  pkg('tricks-preset-two', `export default { name: 'two', description: '', plugins: ['c'], presets: ['three'], settings: { epochs: 5 } };`);
  pkg('tricks-preset-three', `export default { name: 'three', description: '', plugins: ['d'], settings: { batchSize: 7 } };`);
  pkg('tricks-preset-fn', `export default (o) => ({ name: 'fn', description: '', plugins: ['a'], settings: { epochs: o.epochs ?? 1 } });`);
  pkg('tricks-preset-dup', `export default { name: 'dup', description: '', plugins: ['a', 'a'] };`);
  pkg('tricks-preset-named', `export default { name: 'named', description: '', plugins: ['a', ['a', { alpha: 3 }, 'a-again']] };`);
  return dir;
}

describe('config resolution', () => {
  const cwd = project();

  it('orders plugins like Babel: user plugins first, then presets last to first, nested presets after their parent', async () => {
    const r = await resolveConfig({ presets: ['one', 'two'], plugins: ['e'] }, { cwd });
    expect(r.config.plugins.map((p) => p.key)).to.deep.equal(['e', 'c', 'd', 'a', 'b']);
    // Settings: later presets override earlier ones; nested presets are under their parent.
    expect(r.config.epochs).to.equal(5);
    expect(r.config.batchSize).to.equal(7);
    expect(r.config.model.name).to.equal('resnet20');
  });

  it("lets the user's config override a preset's plugin options and settings", async () => {
    const r = await resolveConfig({ preset: 'one', plugins: [['b', { beta: 4 }]], epochs: 9 }, { cwd });
    const b = r.config.plugins.find((p) => p.name === 'b')!;
    expect(b.options).to.deep.equal({ alpha: 2, beta: 4 });
    expect(r.config.epochs).to.equal(9);
  });

  it("drops a preset's model options when the user names another model, keeps them for the same one", async () => {
    // `--model small-cnn` on a preset of resnet20 width 4: small-cnn with its own defaults, not a 4x-wide one
    const other = await resolveConfig({ preset: 'one', model: 'small-cnn' }, { cwd });
    expect(other.config.model).to.deep.equal({ name: 'small-cnn' });
    const same = await resolveConfig({ preset: 'one', model: { name: 'resnet20', options: { depthMult: 2 } } } as never, { cwd });
    expect(same.config.model).to.deep.equal({ name: 'resnet20', options: { width: 4, depthMult: 2 } });
  });

  it("passes a preset item's options to a function-style preset", async () => {
    expect((await resolveConfig({ presets: [['fn', { epochs: 4 }]] }, { cwd })).config.epochs).to.equal(4);
    expect((await resolveConfig({ preset: 'fn' }, { cwd })).config.epochs).to.equal(1);
  });

  it('rejects a duplicate plugin unless it is named', async () => {
    await expectError(() => resolveConfig({ preset: 'dup' }, { cwd }), /plugin "a" is listed twice/);
    const r = await resolveConfig({ preset: 'named' }, { cwd });
    expect(r.config.plugins.map((p) => [p.key, p.options.alpha])).to.deep.equal([
      ['a', 1],
      ['a-again', 3],
    ]);
  });

  it('names the unknown preset or plugin and lists what is available', async () => {
    await expectError(() => resolveConfig({ preset: 'nope' }, { cwd }), /unknown preset "nope"[\s\S]*available presets: .*one/);
    const msg = await expectError(() => resolveConfig({ plugins: ['bb'] }, { cwd }), /unknown plugin "bb" \(did you mean "b"\?\)/);
    expect(msg)
      .to.match(/available plugins: (.*, )?a, /)
      .and.match(/, b, /)
      .and.match(/, c(, |$)/m);
  });

  it('validates options with the option path and the nearest valid key', async () => {
    await expectError(
      () => resolveConfig({ plugins: [['a', { alpah: 2 }]] }, { cwd }),
      /unknown option "plugins\.a\.alpah" \(did you mean "alpha"\?\)/,
    );
    await expectError(() => resolveConfig({ plugins: [['a', { alpha: 'x' }]] }, { cwd }), /option "plugins\.a\.alpha" must be number/);
    const r = await resolveConfig({ plugins: ['a'] }, { cwd });
    expect(r.config.plugins[0].options).to.deep.equal({ alpha: 1 });
  });

  it('resolves a plugin by package name and by path', async () => {
    const r = await resolveConfig({ plugins: ['tricks-plugin-a', join(cwd, 'node_modules', 'tricks-plugin-b', 'index.js')] }, { cwd });
    expect(r.config.plugins.map((p) => p.name)).to.deep.equal(['a', 'b']);
    // A relative path without ./ (what a shell completes) is a path when the file exists, not a package name.
    const bare = await resolveConfig({ plugins: ['node_modules/tricks-plugin-b/index.js'] }, { cwd });
    expect(bare.config.plugins.map((p) => p.name)).to.deep.equal(['b']);
  });

  it('parses --plugin flags', () => {
    expect(parsePluginFlag('mixup')).to.equal('mixup');
    expect(parsePluginFlag('mixup={"alpha":0.2}')).to.deep.equal(['mixup', { alpha: 0.2 }]);
    expect(() => parsePluginFlag('mixup={alpha:0.2}')).to.throw(TricksError, /not valid JSON/);
  });

  it('validates nested paths in trainer settings', () => {
    const schema = {
      type: 'object',
      additionalProperties: false,
      properties: { limit: { type: 'object', additionalProperties: false, properties: { steps: { type: 'integer' } } } },
    };
    expect(() => validate(schema, { limit: { stpes: 3 } }, 'config', '')).to.throw(
      /unknown option "limit\.stpes" \(did you mean "steps"\?\)/,
    );
  });
});

async function expectError(fn: () => Promise<unknown>, re: RegExp): Promise<string> {
  try {
    await fn();
  } catch (e) {
    expect(e).to.be.instanceOf(TricksError);
    expect((e as Error).message).to.match(re);
    return (e as Error).message;
  }
  throw new Error(`expected an error matching ${re}`);
}
