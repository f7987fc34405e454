import '@tensorflow/tfjs-backend-cpu'; // writing weights needs a backend; conversion runs no model
import * as tf from '@tensorflow/tfjs-core';
import { Command, Option } from 'commander';
import { TricksError } from '@tricks/core';
import { IMAGENET_MEAN, IMAGENET_STD, SOURCE_MODELS, convertFile, type ConvertReport } from '@tricks/convert';
import { folder, int } from './flags.js';

const FORMATS: Record<string, string> = {
  'pytorch-zip': 'PyTorch checkpoint',
  'pytorch-legacy': 'PyTorch checkpoint, legacy format',
  safetensors: 'safetensors',
};

const bool = (name: string) => (v: string) => {
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new TricksError(`option ${name}: "${v}" is not true or false`, `e.g. ${name} false`);
};

/** What `tricks convert` prints: what was read, what it became, what was skipped, and the input it expects. */
export function formatConvertReport(r: ConvertReport, out: string): string {
  const [h, w, c] = r.inputShape;
  const lines = [
    `converted ${r.file} (${FORMATS[r.format]}) as ${r.publisher}'s ${r.source} into the zoo's ${r.zoo}: ${r.loaded} tensors, ${r.parameters.toLocaleString('en-US')} parameters, ${r.numClasses} classes, in ${r.seconds.toFixed(1)} s`,
    `wrote ${out}/ (tfjs LayersModel: model.json + weights.bin; load it with tf.loadLayersModel after import '@tricks/models/runtime')`,
    `input: float32 NHWC [N, ${h}, ${w}, ${c}], RGB scaled to [0, 1] and ImageNet-normalized ((x - mean) / std, mean [${IMAGENET_MEAN.join(', ')}], std [${IMAGENET_STD.join(', ')}]): what the PyTorch model takes, in NHWC; the output is its logits`,
  ];
  if (r.skipped.length) {
    lines.push(`skipped (${r.skipped.length}, --strict false):`);
    for (const s of r.skipped) lines.push(`  ${s.key}: ${s.reason}`);
  }
  return lines.join('\n');
}

/** `tricks convert FILE --model NAME --out DIR [--strict false] [--classes N] [--input S] [--json]`. */
export function registerConvertCommand(program: Command): void {
  program
    .command('convert')
    .description(
      'convert a PyTorch (.pth/.pt) or safetensors checkpoint of a torchvision or timm model into a zoo model (a tfjs LayersModel)',
    )
    .argument('<file>', 'the checkpoint: a state_dict saved with torch.save, or a .safetensors file')
    .requiredOption('--model <name>', `its architecture: ${SOURCE_MODELS.map((s) => s.name).join(', ')} (or a zoo name such as resnet50-b)`)
    .addOption(new Option('--out <dir>', 'the folder to write (model.json + weights.bin)').makeOptionMandatory().argParser(folder('--out')))
    .addOption(
      new Option(
        '--strict <bool>',
        'false: load the tensors that fit, keep the rest of the model as initialized, and list what was skipped',
      )
        .default(true)
        .argParser(bool('--strict')),
    )
    .addOption(new Option('--classes <n>', "the classifier's classes (default: the checkpoint's)").argParser(int('--classes', 1)))
    .addOption(new Option('--input <size>', 'input height and width (default 224, the published size)').argParser(int('--input', 1)))
    .option('--json', 'print the report as JSON')
    .action(async (file: string, f: { model: string; out: string; strict: boolean; classes?: number; input?: number; json?: boolean }) => {
      await tf.setBackend('cpu');
      const report = await convertFile(file, f.out, { model: f.model, strict: f.strict, classes: f.classes, inputSize: f.input });
      process.stdout.write((f.json ? JSON.stringify({ ...report, out: f.out }, null, 1) : formatConvertReport(report, f.out)) + '\n');
    });
}
