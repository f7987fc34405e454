/**
 * report.html of a real `tricks train` run, opened from disk in headless Chromium: the charts render, the
 * page asks for nothing over the network, and a screenshot is kept for a person to look at.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, launchChromium } from './chromium.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tricks = join(root, 'core', 'cli', 'bin', 'tricks.js');

describe('report.html in headless Chromium', function () {
  this.timeout(600000);

  it('a tricks train run writes a self-contained report whose charts render offline', async function () {
    if (!existsSync(CHROMIUM)) {
      // .ci/run installs Debian's chromium; without it this check cannot run here
      console.log(`    (skipped: no ${CHROMIUM}; apt-get install -y chromium)`);
      this.skip();
    }
    const out = join(mkdtempSync(join(tmpdir(), 'tricks-report-')), 'run');
    const r = spawnSync(
      process.execPath,
      [
        tricks,
        'train',
        '--data',
        'digits',
        '--model',
        'small-cnn',
        '--epochs',
        '2',
        '--limit-train',
        '512',
        '--limit-val',
        '200',
        '--steps',
        '6',
        '--batch-size',
        '32',
        '--backend',
        process.env.TRICKS_TEST_BACKEND ?? 'wasm',
        '--plugin',
        'label-smoothing={"epsilon":0.1}',
        '--out',
        out,
      ],
      { encoding: 'utf8', timeout: 300000 },
    );
    expect(r.status, r.stderr).to.equal(0);
    const file = join(out, 'report.html');
    expect(existsSync(file)).to.equal(true);
    const html = readFileSync(file, 'utf8');
    // self-contained: no script, no external stylesheet, image or font; the images are inline PNGs
    expect(html).to.not.match(/<script|<link |@import|url\((?!#)/i);
    expect(html).to.not.match(/(src|href)="https?:/i);
    for (const img of html.match(/<img [^>]*>/g) ?? []) expect(img).to.match(/^<img src="data:image\/png;base64,/);

    const ctx = await launchChromium({ width: 1250, height: 900 });
    try {
      const page = await ctx.newPage();
      const requests: string[] = [];
      page.on('request', (req) => requests.push(req.url()));
      await page.goto(`file://${file}`);
      expect(requests.filter((u) => !u.startsWith('file://'))).to.deep.equal([]);
      // loss, accuracy, lr, throughput, confusion matrix, per-class accuracy
      for (const id of ['loss', 'accuracy', 'lr', 'speed', 'confusion', 'perClass']) {
        const svg = page.locator(`#chart-${id} svg`);
        expect(await svg.count(), id).to.equal(1);
        const box = await svg.boundingBox();
        expect(box && box.width > 200 && box.height > 100, `${id}: ${JSON.stringify(box)}`).to.equal(true);
        // vega drew marks into it (paths for lines/bars/cells)
        expect(await page.locator(`#chart-${id} svg path`).count(), id).to.be.greaterThan(2);
      }
      // the confusion matrix has one cell per (true, predicted) pair of the 10 digits
      expect(await page.locator('#chart-confusion svg .mark-rect.role-mark path').count()).to.equal(100);
      expect(await page.locator('#backend').innerText()).to.equal('wasm');
      expect(Number(await page.locator('#images-per-sec').innerText())).to.be.greaterThan(0);
      expect(await page.locator('body').innerText())
        .to.contain('label-smoothing')
        .and.to.contain('"epsilon":0.1');
      // the interpretation: 16 top losses; Grad-CAM of up to 4 misclassified and 4 correct images (of as many
      // classes as have one), each the image and its overlay; every one a decoded PNG drawn at its size (28 px x 4)
      expect(await page.locator('#top-losses figure').count()).to.equal(16);
      const cams = await page.locator('#gradcam figure').count();
      expect(cams).to.be.within(2, 8);
      expect(await page.locator('#gradcam figure img').count()).to.equal(2 * cams);
      const sizes = await page
        .locator('#interpretation ~ .gallery img')
        .evaluateAll((els) => (els as HTMLImageElement[]).map((e) => [e.complete, e.naturalWidth, e.naturalHeight, e.width]));
      expect(sizes).to.have.length(16 + 2 * cams);
      for (const s of sizes) expect(s).to.deep.equal([true, 112, 112, 112]);
      expect(await page.locator('#most-confused li').count()).to.be.greaterThan(0);
      const config = JSON.parse(await page.locator('#config').innerText());
      expect(config.epochs).to.equal(2);
      await page.screenshot({ path: join(out, 'report.png'), fullPage: true });
      expect(existsSync(join(out, 'report.png'))).to.equal(true);
      console.log(`    screenshot: ${join(out, 'report.png')}`);
    } finally {
      await ctx.close();
    }
  });
});
