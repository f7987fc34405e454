// @tricks/convert against PyTorch: checkpoints that test/fixtures/make_checkpoints.py makes here with Debian's
// python3-torch (seeded random weights and BatchNorm statistics), converted, run, and compared with PyTorch's logits.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import '@tricks/models/runtime';
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TricksError, loadModel } from '@tricks/core';
import { convertCheckpoint, convertFile, readCheckpoint, sourceModel, type CheckpointTensor } from '../src/index.js';

const script = fileURLToPath(new URL('../../test/fixtures/make_checkpoints.py', import.meta.url));
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const TOL = 1e-4;

interface Manifest {
  torch: string;
  models: Record<string, { input: number[]; logits: number[]; files: Record<string, string> }>;
  evil: string;
}

/** The fixtures folder, made once per version of the generator (in the system's temp folder, never committed). */
function fixtures(): { dir?: string; reason?: string } {
  const probe = spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0)
    return {
      reason: `${PYTHON} with torch and torchvision is not available (${probe.error?.message ?? probe.stderr.trim().split('\n').pop()})`,
    };
  const hash = createHash('sha256').update(readFileSync(script)).digest('hex').slice(0, 12);
  const dir = join(tmpdir(), `tricks-convert-fixtures-${hash}`);
  if (existsSync(join(dir, 'manifest.json'))) return { dir };
  const tmp = `${dir}.tmp-${process.pid}`;
  const r = spawnSync(PYTHON, [script, tmp], { encoding: 'utf8', timeout: 600000 });
  if (r.status !== 0) throw new Error(`make_checkpoints.py failed: ${r.stderr}`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return { dir };
}

const f32 = (file: string) => {
  const b = readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

/** max |a - b| / max |b|: the difference relative to the scale of the reference logits. */
function relDiff(a: Float32Array | Int32Array | Uint8Array, b: Float32Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

/** A safetensors file of `tensors` (float32), the hub's format: for the missing/extra/misshapen cases. */
function writeSafetensors(file: string, tensors: [string, number[], Float32Array][]): void {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape, v] of tensors) {
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + v.byteLength] };
    offset += v.byteLength;
  }
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(file, Buffer.concat([len, h, ...tensors.map(([, , v]) => Buffer.from(v.buffer, v.byteOffset, v.byteLength))]));
}

async function expectError(p: Promise<unknown>, ...patterns: RegExp[]): Promise<TricksError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a TricksError').to.be.instanceOf(TricksError);
  for (const re of patterns) expect((err as TricksError).message).to.match(re);
  return err as TricksError;
}

describe('@tricks/convert: torchvision and timm checkpoints against PyTorch', function () {
  this.timeout(900000);
  let dir = '';
  let man: Manifest;
  let work = '';
  const measured: string[] = [];

  before(async function () {
    const fx = fixtures();
    if (!fx.dir) {
      console.log(`      skipped: ${fx.reason}`);
      this.skip();
    }
    dir = fx.dir!;
    man = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    work = mkdtempSync(join(tmpdir(), 'tricks-convert-'));
    await tf.setBackend('wasm');
  });
  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
    if (measured.length)
      console.log(`      conversion time and max relative logit difference:\n${measured.map((m) => `        ${m}`).join('\n')}`);
  });

  const MODELS = [
    'resnet18',
    'resnet34',
    'resnet50',
    'resnext50_32x4d',
    'resnet18d',
    'resnet34d',
    'resnet50d',
    'mobilenet_v3_large',
    'mobilenet_v3_small',
    'efficientnet_b0',
    'swin_t',
  ];
  for (const name of MODELS) {
    it(`${name}: written, reloaded with plain tfjs, logits within ${TOL} of PyTorch's, from every format made for it`, async () => {
      const e = man.models[name];
      expect(e, `${name} in the fixtures`).to.not.equal(undefined);
      const x = tf.tensor(f32(join(dir, `${name}.input.bin`)), e.input);
      const ref = f32(join(dir, `${name}.logits.bin`));
      try {
        for (const [format, file] of Object.entries(e.files)) {
          const reference = format === 'fp16' || format === 'bf16' ? f32(join(dir, `resnet18-${format}.logits.bin`)) : ref;
          if (format === 'pytorch-zip') {
            // end to end: the written folder, loaded back as a stock LayersModel (+ the zoo's runtime layers)
            const out = join(work, name);
            const report = await convertFile(join(dir, file), out, { model: name, inputSize: e.input[1] });
            expect(report.skipped).to.deep.equal([]);
            expect(report.numClasses).to.equal(e.logits[1]);
            const model = await loadModel(out);
            const meta = model.getUserDefinedMetadata() as { input: { layout: string; mean: number[] }; tricks: { model: string } };
            expect(meta.input.layout).to.equal('NHWC');
            expect(meta.input.mean).to.deep.equal([0.485, 0.456, 0.406]);
            expect(meta.tricks.model).to.equal(sourceModel(name)!.zoo);
            const y = tf.tidy(() => model.predict(x) as tf.Tensor);
            expect(y.shape).to.deep.equal(e.logits);
            const d = relDiff(y.dataSync() as Float32Array, reference);
            y.dispose();
            model.dispose();
            rmSync(out, { recursive: true, force: true });
            measured.push(
              `${name} (${format}): ${report.seconds.toFixed(2)} s, ${report.loaded} tensors, max rel. diff ${d.toExponential(2)}`,
            );
            expect(d, `${name} ${format}`).to.be.below(TOL);
          } else {
            const t0 = performance.now();
            const { model, report } = convertCheckpoint(await readCheckpoint(join(dir, file)), { model: name, inputSize: e.input[1] });
            const seconds = (performance.now() - t0) / 1000;
            expect(report.skipped).to.deep.equal([]);
            const y = tf.tidy(() => model.predict(x) as tf.Tensor);
            const d = relDiff(y.dataSync() as Float32Array, reference);
            y.dispose();
            model.dispose();
            measured.push(`${name} (${format}): ${seconds.toFixed(2)} s, max rel. diff ${d.toExponential(2)}`);
            expect(d, `${name} ${format}`).to.be.below(TOL);
          }
        }
      } finally {
        x.dispose();
      }
    });
  }

  it('the fp16 and bf16 files are really stored as half and bfloat16 (their logits differ from the float32 model)', async () => {
    const full = await readCheckpoint(join(dir, 'resnet18.pth'));
    const half = await readCheckpoint(join(dir, man.models.resnet18.files.fp16));
    const bf16 = await readCheckpoint(join(dir, man.models.resnet18.files.bf16));
    expect(half.tensors.get('conv1.weight')!.dtype).to.equal('float16');
    expect(bf16.tensors.get('conv1.weight')!.dtype).to.equal('bfloat16');
    expect(half.format).to.equal('pytorch-zip');
    expect(bf16.format).to.equal('safetensors');
    expect(relDiff(f32(join(dir, 'resnet18-bf16.logits.bin')), f32(join(dir, 'resnet18.logits.bin')))).to.be.above(1e-4);
    // int64 num_batches_tracked is read (and then ignored by the mapping)
    expect(full.tensors.get('bn1.num_batches_tracked')!.dtype).to.equal('int64');
    expect(full.tensors.get('bn1.num_batches_tracked')!.values()[0]).to.be.above(0);
  });

  describe('bad input: one TricksError, nothing written', () => {
    const noOutput = (out: string) => expect(existsSync(out), `${out} must not exist`).to.equal(false);

    it('a checkpoint of another architecture names the mismatch and guesses the architecture', async () => {
      const out = join(work, 'other');
      const err = await expectError(
        convertFile(join(dir, 'mobilenet_v3_small.pth'), out, { model: 'resnet18' }),
        /do not fit resnet18/,
        /missing \(\d+\):\n {2}conv1\.weight: resnet18's stem_conv\/kernel needs \[64, 3, 7, 7\]/,
        /unexpected \(\d+\):\n {2}features\.0\.0\.weight \[16, 3, 3, 3\]/,
        /looks like a mobilenet_v3_small checkpoint/,
      );
      expect(err.hint).to.match(/--model mobilenet_v3_small/);
      noOutput(out);
    });

    it('a truncated file (zip, legacy, safetensors)', async () => {
      for (const [file, cut] of [
        [man.models.resnet18.files['pytorch-zip'], 0.5],
        [man.models.resnet18.files['pytorch-legacy'], 0.5],
        [man.models.resnet18.files['pytorch-legacy'], 0.0001],
        [man.models.resnet18.files.safetensors, 0.5],
        [man.models.resnet18.files.safetensors, 0.00001],
      ] as const) {
        const bytes = readFileSync(join(dir, file));
        const cutFile = join(work, `cut-${cut}-${file}`);
        writeFileSync(cutFile, bytes.subarray(0, Math.floor(bytes.length * cut)));
        const out = join(work, 'cut');
        await expectError(convertFile(cutFile, out, { model: 'resnet18' }), /cut short|damaged/);
        noOutput(out);
      }
    });

    it('a pickle that names another Python object (here os.system) is refused, and nothing in it runs', async () => {
      const out = join(work, 'evil');
      const err = await expectError(
        convertFile(join(dir, man.evil), out, { model: 'resnet18' }),
        /names the Python object (posix|os|nt)\.system/,
        /refused and nothing in it ran/,
      );
      expect(err.hint).to.match(/only tensors/);
      expect(existsSync(join(dir, 'PWNED')), 'the marker os.system would create').to.equal(false);
      noOutput(out);
    });

    it('a file that is not a checkpoint: text, an empty file, a plain pickle, a zip without data.pkl, a folder, no file', async () => {
      const cases: [string, Uint8Array | undefined, RegExp][] = [
        ['notes.txt', new TextEncoder().encode('hello, these are not weights\n'), /is not a checkpoint: its bytes are neither/],
        ['empty.pth', new Uint8Array(0), /is not a checkpoint: it is empty/],
        ['plain.pkl', Uint8Array.from([0x80, 0x04, 0x4b, 0x01, 0x2e]), /a plain pickle, not a file torch\.save wrote/],
        // a zip holding one stored file "a.txt" (local header, data, central directory, end record)
        ['other.zip', zipOf('a.txt', 'hi'), /a zip file but not a PyTorch checkpoint/],
      ];
      for (const [name, bytes, re] of cases) {
        const file = join(work, name);
        writeFileSync(file, bytes!);
        const out = join(work, `bad-${name}`);
        await expectError(convertFile(file, out, { model: 'resnet18' }), re);
        noOutput(out);
      }
      mkdirSync(join(work, 'a-folder.pth'), { recursive: true });
      await expectError(convertFile(join(work, 'a-folder.pth'), join(work, 'x'), { model: 'resnet18' }), /is a folder/);
      await expectError(
        convertFile(join(work, 'nope.pth'), join(work, 'x'), { model: 'resnet18' }),
        /nope\.pth: cannot read the checkpoint \(no such file\)/,
      );
      noOutput(join(work, 'x'));
    });

    it('an unknown --model lists the names it knows', async () => {
      await expectError(convertFile(join(dir, 'resnet18.pth'), join(work, 'u'), { model: 'vgg16' }), /--model vgg16: no converter/);
      noOutput(join(work, 'u'));
    });

    it('a missing, an extra and a misshapen tensor each name the tensor and both shapes; --strict false loads the rest and lists them', async () => {
      const src = await readCheckpoint(join(dir, 'resnet18.pth'));
      const kept: [string, number[], Float32Array][] = [];
      for (const [k, t] of src.tensors as Map<string, CheckpointTensor>) {
        if (k === 'layer2.0.bn1.running_var' || k.endsWith('num_batches_tracked')) continue;
        kept.push(k === 'layer1.0.conv1.weight' ? [k, [64, 64, 1, 9], t.values()] : [k, t.shape, t.values()]);
      }
      kept.push(['extra.weight', [3, 2], new Float32Array(6)]);
      const file = join(work, 'edited.safetensors');
      writeSafetensors(file, kept);
      const out = join(work, 'edited');
      await expectError(
        convertFile(file, out, { model: 'resnet18' }),
        /1 misshapen, 1 missing, 1 unexpected/,
        /layer1\.0\.conv1\.weight is \[64, 64, 1, 9\] in the file, resnet18's s1b1_1_conv\/kernel needs \[64, 64, 3, 3\]/,
        /layer2\.0\.bn1\.running_var: resnet18's s2b1_1_bn\/moving_variance needs \[128\]/,
        /extra\.weight \[3, 2\]/,
      );
      noOutput(out);
      const report = await convertFile(file, out, { model: 'resnet18', strict: false });
      expect(report.skipped.map((s) => s.key).sort()).to.deep.equal(['extra.weight', 'layer1.0.conv1.weight', 'layer2.0.bn1.running_var']);
      expect(report.skipped.find((s) => s.key === 'layer1.0.conv1.weight')!.reason).to.match(
        /\[64, 64, 1, 9\] in the file, \[64, 64, 3, 3\] needed/,
      );
      expect(report.loaded).to.equal(100);
      const model = await loadModel(out);
      // a loaded tensor is the file's; the skipped running variance keeps its initial value (ones)
      const fc = model.getLayer('logits').getWeights()[0];
      const want = src.tensors.get('fc.weight')!.values();
      expect(fc.shape).to.deep.equal([512, 1000]);
      expect(fc.dataSync()[1]).to.equal(want[512]); // kernel[0][1] = weight[1][0]
      expect([...model.getLayer('s2b1_1_bn').getWeights()[3].dataSync()].every((v) => v === 1)).to.equal(true);
      model.dispose();
    });

    it("timm's EfficientNet layout (not mapped) says so and points to torchvision's weights", async () => {
      const file = join(work, 'timm-effnet.safetensors');
      writeSafetensors(file, [
        ['conv_stem.weight', [32, 3, 3, 3], new Float32Array(864)],
        ['bn1.weight', [32], new Float32Array(32)],
      ]);
      const err = await expectError(convertFile(file, join(work, 't'), { model: 'efficientnet_b0' }), /do not fit efficientnet_b0/);
      expect(err.hint).to.match(/timm's EfficientNet\/MobileNetV3 layout .* use torchvision's weights/);
    });

    it('--out must be new, empty or an earlier conversion: a run folder or a file is refused before any work', async () => {
      const run = join(work, 'a-run');
      mkdirSync(run, { recursive: true });
      writeFileSync(join(run, 'run.json'), '{}');
      await expectError(
        convertFile(join(dir, 'resnet18.pth'), run, { model: 'resnet18' }),
        /--out .*a-run is not empty and was not written by tricks convert \(run\.json\)/,
      );
      expect(readdirSync(run)).to.deep.equal(['run.json']);
      await expectError(convertFile(join(dir, 'resnet18.pth'), join(run, 'run.json'), { model: 'resnet18' }), /is a file, not a folder/);
      // an earlier conversion is replaced
      const out = join(work, 'again');
      await convertFile(join(dir, 'mobilenet_v3_small.pth'), out, { model: 'mobilenet_v3_small' });
      const report = await convertFile(join(dir, 'mobilenet_v3_small.safetensors'), out, { model: 'mobilenet_v3_small' });
      expect(report.format).to.equal('safetensors');
      expect(JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')).userDefinedMetadata.tricks.converted.format).to.equal('safetensors');
      expect(readdirSync(out).sort()).to.deep.equal(['model.json', 'weights.bin']);
    });

    it("nn.DataParallel's `module.` prefix is dropped", async () => {
      const src = await readCheckpoint(join(dir, 'mobilenet_v3_small.pth'));
      const file = join(work, 'dp.safetensors');
      writeSafetensors(
        file,
        [...src.tensors].filter(([k]) => !k.endsWith('num_batches_tracked')).map(([k, t]) => [`module.${k}`, t.shape, t.values()]),
      );
      const { model, report } = convertCheckpoint(await readCheckpoint(file), { model: 'mobilenet_v3_small', inputSize: 64 });
      expect(report.skipped).to.deep.equal([]);
      expect(report.loaded).to.equal(210);
      model.dispose();
    });

    it("a class count other than the file's is a misshapen head (strict), a new head with --strict false", async () => {
      const out = join(work, 'head');
      const err = await expectError(
        convertFile(join(dir, 'resnet18.pth'), out, { model: 'resnet18', classes: 10 }),
        /fc\.weight is \[1000, 512\] in the file, resnet18's logits\/kernel needs \[10, 512\]/,
        /fc\.bias is \[1000\] in the file, resnet18's logits\/bias needs \[10\]/,
      );
      expect(err.hint).to.match(/1000 classes/);
      noOutput(out);
      const report = await convertFile(join(dir, 'resnet18.pth'), out, { model: 'resnet18', classes: 10, strict: false });
      expect(report.numClasses).to.equal(10);
      expect(report.skipped.map((s) => s.key)).to.deep.equal(['fc.weight', 'fc.bias']);
    });
  });
});

/** A minimal zip (one stored entry), as any zip tool writes it. */
function zipOf(name: string, text: string): Uint8Array {
  const n = Buffer.from(name);
  const d = Buffer.from(text);
  const crc = crc32(d);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(d.length, 18);
  local.writeUInt32LE(d.length, 22);
  local.writeUInt16LE(n.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(d.length, 20);
  central.writeUInt32LE(d.length, 24);
  central.writeUInt16LE(n.length, 28);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(46 + n.length, 12);
  end.writeUInt32LE(30 + n.length + d.length, 16);
  return new Uint8Array(Buffer.concat([local, n, d, central, n, end]));
}

function crc32(b: Uint8Array): number {
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
