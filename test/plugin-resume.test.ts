// Stateful plugins resume exactly through the CLI: a real SIGTERM to `tricks train` mid-epoch, then
// `tricks train --resume`, ends with the rows and the plugin's report of a run that was never stopped.
// (The in-process checks, an AbortSignal at chosen steps, are in each plugin's tests: interruptParity.)
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, run, tmp, tricks } from './cli-helpers.js';

/** The deterministic figures of metrics.jsonl (not its timings). */
const rows = (out: string) =>
  readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>)
    .map(({ epoch, train_loss, val_loss, val_top1, val_top5, lr }) => ({ epoch, train_loss, val_loss, val_top1, val_top5, lr }));

/** `tricks train ARGS --out OUT`, sent SIGTERM as soon as stderr matches `when`; its exit code and stderr. */
async function trainUntil(args: string[], out: string, when: RegExp): Promise<{ code: number | null; err: string }> {
  const child = spawn(process.execPath, [tricks, 'train', ...args, '--out', out], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let sent = false;
  child.stderr.on('data', (d) => {
    err += d;
    if (!sent && when.test(err)) sent = child.kill('SIGTERM');
  });
  const code = await new Promise<number | null>((r) => child.on('close', r));
  return { code, err };
}

// quick-start on 640 digits, 3 epochs of 10 steps, lr 0.02 (the preset's 0.1 diverges on so few steps)
const recipe = ['--preset', 'quickstart', '--epochs', '3', '--limit-train', '640', '--limit-val', '200', '--steps', '10', '--lr', '0.02'];

const cases: { name: string; plugin: string; files: string[]; acts: RegExp }[] = [
  {
    // a 1-epoch warm-up, then every digit whose own-label probability stays under 0.3 is dropped (434 of 640 after epoch 1)
    name: 'noise-filter',
    plugin: 'noise-filter={"warmup":1,"window":1,"threshold":0.3}',
    files: ['noise-report.csv', 'noise-report.json'],
    acts: /noise-filter: epoch 1: [1-9]\d* of 640 samples dropped/,
  },
  {
    // the class-balanced sampler with SMOTE pools rebuilt from the embeddings after every epoch
    name: 'class-balance (smote, embedding space)',
    plugin: 'class-balance={"strategy":"smote","space":"embedding","maxPool":40,"k":3}',
    files: [],
    acts: /plugins: class-balance/,
  },
];

describe('stateful plugins resume exactly after a SIGTERM to tricks train', function () {
  this.timeout(300000);

  for (const c of cases)
    it(`${c.name}: SIGTERM mid-epoch 2, then --resume: the same rows and reports as the run that was not stopped`, async () => {
      const args = [...recipe, '--backend', 'wasm', '--plugin', c.plugin];
      const full = join(tmp(), 'full');
      const straight = run(['train', ...args, '--out', full]);
      expect(straight.code, straight.err).to.equal(0);
      expect(straight.err).to.match(c.acts);

      // epoch 1's row is logged after its checkpoint; the signal lands in epoch 2, whose first step finishes at least
      const out = join(tmp(), 'cut');
      const cut = await trainUntil(args, out, /epoch 1\/3:/);
      expect(cut.code, cut.err).to.equal(143);
      expect(cut.err).to.match(/SIGTERM: stopped after the current step; checkpoint written/);
      expect(cut.err).to.not.match(/epoch 2\/3:/);
      const resumed = run(['train', '--resume', out]);
      expect(resumed.code, resumed.err).to.equal(0);
      expect(resumed.err).to.match(/resumed from .*: epoch 2, step [1-9] of it/);
      expect(resumed.err).to.not.match(/warning/);

      expect(rows(out)).to.have.length(3);
      expect(rows(out)).to.deep.equal(rows(full));
      for (const f of c.files) {
        expect(existsSync(join(out, f)), f).to.equal(true);
        expect(readFileSync(join(out, f), 'utf8'), f).to.equal(readFileSync(join(full, f), 'utf8'));
      }
      // the exported model: the same weights, byte for byte
      expect(readFileSync(join(out, 'model', 'weights.bin')).equals(readFileSync(join(full, 'model', 'weights.bin')))).to.equal(true);
    });
});
