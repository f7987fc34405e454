import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { tmp } from './helpers.js';
import { writeTinyPreset } from '@tricks/core/testing';

const bin = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'tricks.js');

/** `tricks ablate` end to end: two processes at once, SIGTERM mid-way, the second call resumes, the third skips. */
describe('tricks ablate (CLI)', function () {
  this.timeout(600000);

  it('stops on SIGTERM with checkpoints, resumes interrupted runs, skips finished ones, and writes the table and charts', async () => {
    const dir = tmp();
    const preset = writeTinyPreset(dir);
    const out = join(dir, 'abl');
    const args = [bin, 'ablate', '--preset', preset, '--seeds', '2', '--jobs', '2', '--epochs', '2', '--steps', '12', '--out', out];

    // 1. Start, wait for a first checkpoint, then SIGTERM the ablation.
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number>((res) => child.on('close', (code) => res(code ?? -1)));
    const runsDir = join(out, 'runs');
    const hasCheckpoint = () =>
      existsSync(runsDir) &&
      readdirSync(runsDir).some(
        (id) => existsSync(join(runsDir, id, 'checkpoint', 'state.json')) && !existsSync(join(runsDir, id, 'result.json')),
      );
    for (let i = 0; i < 2400 && !hasCheckpoint(); i++) await new Promise((r) => setTimeout(r, 100));
    expect(hasCheckpoint(), stderr).to.equal(true);
    child.kill('SIGTERM');
    const code = await exited;
    expect(code, stderr).to.equal(1);
    expect(stderr)
      .to.match(/ablation stopped by SIGTERM/)
      .and.to.match(/run the same command again/);
    expect(stderr).to.not.match(/^\s+at .+:\d+:\d+/m);
    const unfinished = readdirSync(runsDir).filter(
      (id) => !existsSync(join(runsDir, id, 'result.json')) && existsSync(join(runsDir, id, 'checkpoint')),
    );
    expect(unfinished.length).to.be.greaterThan(0);

    // 2. The same command continues: interrupted runs resume, finished ones are kept.
    const second = spawnSync(process.execPath, args, { encoding: 'utf8' });
    expect(second.status, second.stderr).to.equal(0);
    const json = JSON.parse(readFileSync(join(out, 'ablation.json'), 'utf8'));
    expect(json.steps.map((s: { n: number }) => s.n)).to.deep.equal([2, 2]);
    const resumed = json.runs.filter((r: { resumedFrom?: number }) => r.resumedFrom !== undefined).map((r: { id: string }) => r.id);
    expect(resumed).to.include.members(unfinished.filter((id) => json.runs.some((r: { id: string }) => r.id === id)));
    expect(resumed.length).to.be.greaterThan(0);
    const md = readFileSync(join(out, 'ablation.md'), 'utf8');
    expect(md).to.match(/\| 1 \| baseline \| baseline \| \d+\.\d\d ± \d+\.\d\d \| 2 \|/);
    expect(md).to.match(/\| 2 \| \+ cosine \| schedule=cosine \| \d+\.\d\d ± \d+\.\d\d \| 2 \| [+−]\d+\.\d\d ± \d+\.\d\d \|/);
    for (const png of ['ladder.png', 'curves.png']) expect((await sharp(join(out, png)).metadata()).format).to.equal('png');
    for (const id of readdirSync(runsDir)) expect(existsSync(join(runsDir, id, 'report.html')), id).to.equal(true);

    // 3. A third call trains nothing.
    const third = spawnSync(process.execPath, args, { encoding: 'utf8' });
    expect(third.status, third.stderr).to.equal(0);
    expect(third.stderr).to.match(/4 run\(s\) finished already/);
    expect(third.stderr).to.not.match(/start s1/);
  });

  it('--rungs runs part of a ladder, by index or name; the tables gather every finished rung, with an ETA in the log', () => {
    const dir = tmp();
    const preset = writeTinyPreset(dir);
    const out = join(dir, 'abl');
    const base = [bin, 'ablate', '--preset', preset, '--seeds', '2', '--out', out];
    const first = spawnSync(process.execPath, [...base, '--rungs', '+ COSINE'], { encoding: 'utf8' });
    expect(first.status, first.stderr).to.equal(0);
    expect(first.stderr).to.match(/rungs 2 of 2 x 2 seed\(s\) = 2 runs/);
    expect(first.stderr).to.match(/1\/2 finished, .* so far, eta /);
    expect(readdirSync(join(out, 'runs')).sort()).to.deep.equal(['s2-cosine-seed0', 's2-cosine-seed1']);
    const second = spawnSync(process.execPath, [...base, '--rungs', '1'], { encoding: 'utf8' });
    expect(second.status, second.stderr).to.equal(0);
    expect(second.stderr).to.not.match(/start s2/);
    const json = JSON.parse(readFileSync(join(out, 'ablation.json'), 'utf8'));
    expect(json.steps.map((s: { stepName: string; n: number }) => [s.stepName, s.n])).to.deep.equal([
      ['baseline', 2],
      ['+ cosine', 2],
    ]);
    const bad = spawnSync(process.execPath, [...base, '--rungs', '3'], { encoding: 'utf8' });
    expect(bad.status).to.equal(1);
    expect(bad.stderr)
      .to.match(/--rungs 3: the ladder has rungs 1 to 2/)
      .and.to.match(/1 "baseline", 2 "\+ cosine"/);
    const badName = spawnSync(process.execPath, [...base, '--rungs', 'mixup'], { encoding: 'utf8' });
    expect(badName.stderr).to.match(/no rung named "mixup"/);
  });

  it('explains a missing preset and a preset without a ladder', () => {
    const out = join(tmp(), 'x');
    const r = spawnSync(process.execPath, [bin, 'ablate', '--out', out], { encoding: 'utf8' });
    expect(r.status).to.equal(1);
    expect(r.stderr).to.match(/tricks ablate needs a preset with a ladder/);
    const r2 = spawnSync(process.execPath, [bin, 'ablate', '--preset', 'quickstart', '--out', out], { encoding: 'utf8' });
    expect(r2.status).to.equal(1);
    expect(r2.stderr).to.match(/preset quickstart has no ablation ladder/);
    expect(existsSync(out)).to.equal(false);
  });
});
