import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const arrows = (cwd = root) => spawnSync(process.execPath, [join(cwd, 'scripts', 'arrows.mjs')], { cwd, encoding: 'utf8' });

describe('the package graph (scripts/arrows.mjs, docs/architecture.md)', function () {
  this.timeout(60000);

  it('every dependency points toward @tricks/core: no circle, nothing imports the CLI, core stays small', () => {
    const r = arrows();
    expect(r.stdout + r.stderr, 'arrows.mjs').to.match(/every dependency points toward @tricks\/core/);
    expect(r.status).to.equal(0);
  });

  it('catches what it forbids: an import circle, an undeclared import, a plugin importing another plugin, core importing a product', () => {
    // A copy of the repository's package manifests and sources (no node_modules), then four violations.
    const copy = mkdtempSync(join(tmpdir(), 'tricks-arrows-'));
    try {
      const filter = (src: string) => !/[/\\](node_modules|dist|\.git)([/\\]|$)/.test(src);
      for (const d of ['core', 'plugins', 'presets', 'test', 'scripts']) cpSync(join(root, d), join(copy, d), { recursive: true, filter });
      cpSync(join(root, 'package.json'), join(copy, 'package.json'));
      writeFileSync(
        join(copy, 'core', 'trainer', 'src', 'util', 'closest.ts'),
        "import '../plugin/validate.js';\nexport const closest = () => '';\n",
      );
      writeFileSync(
        join(copy, 'core', 'trainer', 'src', 'extra.ts'),
        "import { runAblation } from '@tricks/lab';\nexport const x = runAblation;\n",
      );
      writeFileSync(
        join(copy, 'plugins', 'mixup', 'src', 'extra.ts'),
        "import { smoothTargets } from '@tricks/plugin-label-smoothing';\nexport const y = smoothTargets;\n",
      );
      const corePkg = join(copy, 'core', 'trainer', 'package.json');
      const pkg = JSON.parse(readFileSync(corePkg, 'utf8'));
      pkg.dependencies.sharp = '^0.35.5';
      writeFileSync(corePkg, JSON.stringify(pkg));
      const r = arrows(copy);
      const out = r.stdout;
      expect(r.status).to.equal(1);
      expect(out).to.match(/import circle in @tricks\/core: .*util\/closest\.ts/);
      expect(out).to.match(/core\/trainer\/src\/extra\.ts imports @tricks\/lab, which @tricks\/core does not declare/);
      expect(out).to.match(
        /plugins\/mixup\/src\/extra\.ts imports @tricks\/plugin-label-smoothing, which @tricks\/plugin-mixup does not declare in its dependencies/,
      );
      expect(out).to.match(/@tricks\/core depends on sharp: the trainer takes only/);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});
