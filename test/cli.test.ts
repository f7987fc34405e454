import { expect } from 'chai';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, run, tmp, trainShort, tricks } from './cli-helpers.js';

/** An expected error: non-zero exit, one message, no stack trace, nothing left in --out. */
function expectCleanError(args: string[], re: RegExp) {
  const out = join(tmp(), 'run');
  const r = run([...args, '--out', out]);
  expect(r.code, r.err).to.not.equal(0);
  expect(r.err).to.match(re);
  expect(r.err).to.not.match(/^\s+at .+:\d+:\d+/m);
  expect(existsSync(out) ? readdirSync(out) : []).to.deep.equal([]);
  return r.err;
}

describe('tricks CLI', function () {
  this.timeout(300000);

  it('prints help for every command', () => {
    for (const args of [['--help'], ['train', '--help'], ['eval', '--help'], ['plugins', '--help']]) {
      const r = run(args);
      expect(r.code).to.equal(0);
      expect(r.out).to.match(/Usage: tricks/);
    }
  });

  it('lists the unknown preset and the available ones', () => {
    expectCleanError(['train', '--preset', 'nosuchpreset'], /unknown preset "nosuchpreset"[\s\S]*available presets: .*quickstart/);
  });

  it('lists the available plugins for an unknown plugin', () => {
    expectCleanError(
      ['train', '--preset', 'quickstart', '--plugin', 'nosuchplugin'],
      /unknown plugin "nosuchplugin"[\s\S]*available plugins:/,
    );
  });

  it('names a bad plugin option and the nearest valid key', function () {
    if (!existsSync(join(root, 'node_modules', '@tricks', 'plugin-mixup'))) this.skip(); // mixup is a workspace package
    expectCleanError(['train', '--preset', 'quickstart', '--plugin', 'mixup={"alpah":0.2}'], /plugins\.mixup\.alpah.*did you mean "alpha"/);
  });

  it('says where it looked for missing data and how to get it', () => {
    expectCleanError(
      ['train', '--preset', 'quickstart', '--data', 'fashion-mnist:/nonexistent/fm'],
      /\/nonexistent\/fm does not exist[\s\S]*apt-get install dataset-fashion-mnist/,
    );
  });

  it('names the corrupt IDX file', () => {
    const dir = tmp();
    mkdirSync(dir, { recursive: true });
    const junk = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7919 + 13) % 251));
    for (const f of ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'])
      writeFileSync(join(dir, f), junk);
    expectCleanError(
      ['train', '--preset', 'quickstart', '--data', `fashion-mnist:${dir}`],
      new RegExp(`${dir}/train-images-idx3-ubyte: not an IDX file`),
    );
  });

  it('says so when the batch size is larger than the dataset', () => {
    expectCleanError(
      ['train', '--preset', 'quickstart', '--limit-train', '50', '--batch-size', '64'],
      /batch size 64 is larger than the training set \(50 items/,
    );
  });

  it('names a typo in a config file', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'tricks.config.json'), JSON.stringify({ epohcs: 2 }));
    const r = run(['train', '--out', join(dir, 'run')], dir);
    expect(r.code).to.not.equal(0);
    expect(r.err).to.match(/tricks\.config\.json: unknown option "epohcs" \(did you mean "epochs"\?\)/);
  });

  it('lists plugins as JSON with name, package, description and options', () => {
    const r = run(['plugins', '--json']);
    expect(r.code, r.err).to.equal(0);
    const list = JSON.parse(r.out) as { name: string; package: string; description: string; options: object }[];
    expect(list.length).to.be.greaterThan(0);
    for (const p of list) expect(p).to.have.all.keys('name', 'package', 'description', 'options');
    expect(list.map((p) => p.name)).to.not.include('test-utils');
  });

  it('trains a short run, then evaluates the saved model with `tricks eval`', () => {
    const out = join(tmp(), 'run');
    const t = trainShort(out, ['--limit-val', '200', '--no-interpret']);
    // --no-interpret: report.interpret false, the report without its top losses, most confused and Grad-CAM
    const report = readFileSync(join(out, 'report.html'), 'utf8');
    expect(report).to.contain('id="chart-confusion"').and.to.not.contain('id="interpretation"');
    expect(t.err).to.match(/backend: wasm|data: digits/);
    const summary = JSON.parse(t.out.trim().split('\n').at(-1)!);
    expect(summary.val_top1).to.be.greaterThan(0.3); // 10 classes: chance is 0.1
    const e = run(['eval', '--model', join(out, 'model'), '--data', 'digits', '--backend', 'wasm']);
    expect(e.code, e.err).to.equal(0);
    const res = JSON.parse(e.out);
    expect(res.top1).to.be.within(0, 1);
    expect(res.top5).to.be.at.least(res.top1);
    expect(res.confusion).to.have.length(10);
    expect(res.confusion.flat().reduce((a: number, b: number) => a + b, 0)).to.equal(res.count);
    // test-time augmentation: the tta plugin's views, scored on the same images
    const t2 = run([
      'eval',
      '--model',
      join(out, 'model'),
      '--data',
      'digits',
      '--backend',
      'wasm',
      '--tta',
      'ten-crop',
      '--tta-merge',
      'logits',
    ]);
    expect(t2.code, t2.err).to.equal(0);
    const tta = JSON.parse(t2.out);
    expect(tta.tta).to.deep.equal({ views: 'ten-crop', merge: 'logits' });
    expect(tta.count).to.equal(res.count);
    expect(tta.loss).to.not.equal(res.loss);
    expect(t2.err).to.match(/test-time augmentation: .*ten-crop/);
    const bad = run(['eval', '--model', join(out, 'model'), '--data', 'digits', '--tta', 'twenty']);
    expect(bad.code).to.not.equal(0);
    expect(bad.err).to.match(/--tta.*twenty.*flip, five-crop, ten-crop/s);
  });

  it('resumes an interrupted run: SIGTERM finishes the step, writes a checkpoint and exits 143', async () => {
    const { spawn } = await import('node:child_process');
    const out = join(tmp(), 'run');
    const child = spawn(
      process.execPath,
      [
        tricks,
        'train',
        '--preset',
        'quickstart',
        '--epochs',
        '2',
        '--limit-train',
        '640',
        '--limit-val',
        '100',
        '--steps',
        '10',
        '--backend',
        'wasm',
        '--out',
        out,
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      if (/epoch 1\/2:/.test(err) && !child.killed) child.kill('SIGTERM');
    });
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code, err).to.equal(143);
    expect(existsSync(join(out, 'checkpoint', 'state.json'))).to.equal(true);
    const r = run(['train', '--resume', out]);
    expect(r.code, r.err).to.equal(0);
    expect(r.err).to.match(/resumed from/);
    expect(JSON.parse(r.out.trim().split('\n').at(-1)!).epochs).to.equal(2);
  });

  it('tricks lr-find: sweeps, prints the suggestions and the --lr to pass, writes only its two files; bad flags get one error', () => {
    const out = join(tmp(), 'lr');
    const recipe = [
      '--data',
      'digits',
      '--limit-train',
      '512',
      '--batch-size',
      '32',
      '--backend',
      'wasm',
      '--plugin',
      'label-smoothing',
      '--plugin',
      'lr-scaling',
    ];
    const r = run(['lr-find', ...recipe, '--start-lr', '1e-4', '--num-it', '30', '--out', out]);
    expect(r.code, r.err).to.equal(0);
    expect(r.out)
      .to.match(/^lr-find: \d+ steps, lr 1\.0e-4 to /)
      .and.match(/^ {2}valley {3}\d\.\de-\d/m)
      .and.match(/^ {2}steep {4}\d\.\de[-+]\d/m)
      .and.match(/^Pass --lr \d\.\de-\d to tricks train \(the plugins scale --lr by 0\.125\)\.$/m)
      .and.include(`plot: ${join(out, 'lr-find.png')}`);
    expect(r.err).to.match(/plugins: label-smoothing, lr-scaling/); // the recipe's plugins train in the sweep
    // lr-scaling multiplies --lr by 32/256: the flag to pass is the valley lr divided by that
    const valley = Number(/^ {2}valley {3}(\S+)/m.exec(r.out)![1]);
    const pass = Number(/^Pass --lr (\S+)/m.exec(r.out)![1]);
    expect(pass / valley).to.be.closeTo(8, 0.8);
    expect(readdirSync(out).sort()).to.deep.equal(['lr-find.json', 'lr-find.png']);
    expectCleanError(['lr-find', '--start-lr', '1', '--end-lr', '0.1'], /--start-lr\) 1 is not below endLr \(--end-lr\) 0\.1/);
    expectCleanError(['lr-find', '--num-it', 'many'], /option --num-it: "many" is not an integer/);
    expectCleanError(['lr-find', '--num-it', '1'], /numIt \(--num-it\) is 1\b/);
    expectCleanError(['lr-find', '--lr', '0.1'], /--lr does not apply/);
    expect(run(['lr-find', '--out', join(out, 'lr-find.json')]).err).to.match(/is a file, not a folder/);
  });
});
