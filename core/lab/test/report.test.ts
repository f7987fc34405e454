import { expect } from 'chai';
import { perClassAccuracy, renderReportHtml, type ReportData } from '../src/report/report.js';
import { DEFAULT_SETTINGS } from '@tricks/core';

const data = (over: Partial<ReportData> = {}): ReportData => ({
  title: 'tricks run: test <model>',
  out: '/tmp/run',
  createdAt: '2026-11-28T00:00:00Z',
  config: {
    ...DEFAULT_SETTINGS,
    presets: [],
    plugins: [{ name: 'mixup', key: 'mixup', options: { alpha: 0.2 }, source: '@tricks/plugin-mixup' }],
    out: '/tmp/run',
  },
  backend: 'wasm',
  model: { name: 'small-cnn', parameters: 1234 },
  data: { train: 100, val: 30, shape: [28, 28, 1], numClasses: 3 },
  classNames: ['shirt', 'shoe', 'bag'],
  metrics: [
    { epoch: 1, train_loss: 1.2, val_loss: 1.1, val_top1: 0.5, val_top5: 1, lr: 0.1, images_per_sec: 200, seconds: 3 },
    { epoch: 2, train_loss: 0.8, val_loss: 0.9, val_top1: 0.6, val_top5: 1, lr: 0.01, images_per_sec: 300, seconds: 2 },
  ],
  eval: {
    confusion: [
      [8, 2, 0],
      [1, 9, 0],
      [3, 3, 4],
    ],
    count: 30,
    top1: 0.7,
    top5: 1,
    loss: 0.9,
  },
  artifacts: [{ format: 'tfjs', dir: '/tmp/run/model', files: ['model.json', 'weights.bin'] }],
  ...over,
});

describe('report.html', function () {
  this.timeout(120000);

  it('per-class accuracy is the diagonal over the row sums of the confusion matrix', () => {
    const rows = perClassAccuracy(
      [
        [8, 2, 0],
        [1, 9, 0],
        [0, 0, 0],
      ],
      ['a', 'b'],
    );
    expect(rows).to.have.length(3);
    expect(rows[0]).to.deep.equal({ name: 'a', accuracy: 0.8, count: 10 });
    expect(rows[1].accuracy).to.equal(0.9);
    expect(rows[2].name).to.equal('2');
    expect(Number.isNaN(rows[2].accuracy)).to.equal(true);
  });

  it('renders every chart as inline SVG, the numbers, the plugins and the config, escaped, with nothing to fetch', async () => {
    const html = await renderReportHtml(data());
    for (const id of ['loss', 'accuracy', 'lr', 'speed', 'confusion', 'perClass'])
      expect(html, id).to.match(new RegExp(`<figure id="chart-${id}" class="chart"><svg`));
    expect(html).to.not.match(/<script|<link |<img |(src|href)="https?:/i);
    expect(html).to.contain('tricks run: test &lt;model&gt;');
    expect(html).to.contain('60.00 %'); // last epoch top-1
    expect(html).to.contain('250'); // mean images/s
    expect(html).to.contain('@tricks/plugin-mixup').and.to.contain('{&quot;alpha&quot;:0.2}');
    // the per-class table: shirt 8/10, shoe 9/10, bag 4/10
    expect(html).to.match(/<td>shirt<\/td><td>10<\/td><td>80\.00 %<\/td>/);
    expect(html).to.match(/<td>bag<\/td><td>10<\/td><td>40\.00 %<\/td>/);
    // the confusion heatmap labels its cells with the counts and its axes with the class names
    const confusion = html.slice(html.indexOf('id="chart-confusion"'), html.indexOf('id="chart-perClass"'));
    expect(confusion).to.contain('shoe').and.to.contain('>9<');
    expect(html).to.match(/<pre id="config">[\s\S]*&quot;batchSize&quot;: 64/);
  });

  it('renders the interpretation: top losses, most confused, Grad-CAM, images only as inline PNG data URIs', async () => {
    const png = 'data:image/png;base64,iVBORw0KGgo=';
    const im = (index: number, loss: number) => ({
      index,
      actual: 'shirt',
      predicted: '<t-shirt>',
      loss,
      prob: 0.91,
      png,
      cam: png,
      camMax: index,
    });
    const confused = Array.from({ length: 45 }, (_, i) => ({ actual: 'shirt', predicted: `c${i}`, count: 45 - i }));
    const html = await renderReportHtml(
      data({
        interpretation: {
          images: 30,
          of: 300,
          topLosses: [im(7, 3.25), im(2, 1.5)],
          minVal: 1,
          mostConfused: confused,
          gradcam: { layer: 'pool2', shape: [7, 7, 64], wrong: [im(7, 3.25)], correct: [im(0, 0.01)] },
          seconds: 1.25,
        },
      }),
    );
    expect(html).to.contain('on 30 validation images (of 300, evenly spaced');
    expect(html).to.contain('<figure class="top-loss" data-index="7" data-loss="3.25">');
    expect(html).to.contain('<b>&lt;t-shirt&gt;</b> / shirt / 3.25 / 0.91');
    expect(html.match(/<li data-count=/g)).to.have.length(40);
    expect(html).to.contain('and 5 more pairs.');
    expect(html).to.match(/on <code>pool2<\/code> \(7×7×64\)/);
    expect(html.match(/<figure class="gradcam"/g)).to.have.length(2);
    expect(html).to.contain('(no positive evidence)'); // the correct image's map is all zero (camMax 0)
    const imgs = html.match(/<img [^>]*>/g)!;
    expect(imgs).to.have.length(2 + 2 * 2);
    for (const i of imgs) expect(i).to.match(/^<img src="data:image\/png;base64,[^"]+" alt="[^"]*">$/);
    expect(html).to.not.match(/<script|<link |(src|href)="https?:/i);
  });

  it('renders a run without epochs or evaluation (stopped before the first epoch) without charts', async () => {
    const html = await renderReportHtml(data({ metrics: [], eval: undefined, stopped: 'early stop' }));
    expect(html).to.not.contain('<figure');
    expect(html).to.contain('Stopped early: early stop');
  });
});
