import { Command, Option } from 'commander';
import { benchDataParallel, benchTrain, buildZooModel, torchPeer, zooModelRef, type PeerResult } from '@tricks/lab';
import { TricksError, ConsoleLogger, MemoryLogger } from '@tricks/core';
import { planMicroBatches, wasmKernelThreads, wasmMemory } from '@tricks/backend-wasm';
import { benchOnnxInference } from '@tricks/export';
import { cliServices } from './services.js';
import { int } from './flags.js';

/** Default input shape and classes per model family: CIFAR models take 32x32x3 and 100 classes. */
function defaults(name: string): { input: number; classes: number; channels: number } {
  if (/cifar|^resnet(20|32|44|56|110)$/.test(name)) return { input: 32, classes: 100, channels: 3 };
  if (name === 'small-cnn') return { input: 28, classes: 10, channels: 1 };
  return { input: 224, classes: 1000, channels: 3 };
}

export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('training and inference images/s of a model on a backend (random data, SGD momentum steps)')
    .requiredOption('--model <name>', 'model name, e.g. resnet18-cifar (see `tricks model list`)')
    .option('--batch-size <n>', 'batch size', int('--batch-size', 1), 64)
    .addOption(
      new Option('--backend <name>', 'tfjs backend').choices(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']).default('auto'),
    )
    .option('--input <px>', 'input height and width (default per model)', int('--input', 1))
    .option('--classes <n>', 'number of classes (default per model)', int('--classes', 1))
    .option('--steps <n>', 'timed steps', int('--steps', 1), 5)
    .option('--warmup <n>', 'untimed steps first', int('--warmup', 0), 2)
    .option(
      '--workers <n>',
      'split each step over n worker threads, each with its own wasm backend (DataParallel, gradients averaged)',
      int('--workers', 1),
      1,
    )
    .option('--threads <n>', 'threads of the wasm kernels (default: every core; sets TRICKS_WASM_THREADS)', int('--threads', 1))
    .option(
      '--onnx',
      'also time inference of the model exported to ONNX in onnxruntime-node (installed separately), as onnxInferImagesPerSec',
    )
    .option(
      '--peer',
      'also train and run the torchvision twin in PyTorch (TORCH_PYTHON, default /usr/bin/python3) with the same threads, and print the ratios',
    )
    .option(
      '--json',
      'print one JSON line {model, batchSize, backend, threads, trainImagesPerSec, inferImagesPerSec[, onnxInferImagesPerSec]}',
    )
    .action(
      async (f: {
        model: string;
        batchSize: number;
        backend: string;
        input?: number;
        classes?: number;
        steps: number;
        warmup: number;
        workers: number;
        threads?: number;
        json?: boolean;
        onnx?: boolean;
        peer?: boolean;
      }) => {
        if (f.threads !== undefined) {
          if (!Number.isInteger(f.threads) || f.threads < 1) throw new TricksError(`--threads ${f.threads}: must be a positive integer`);
          process.env.TRICKS_WASM_THREADS = String(f.threads);
        }
        const services = await cliServices({ logger: f.json ? new MemoryLogger() : new ConsoleLogger() });
        const registry = services.models;
        if (!registry.has(f.model)) registry.build(f.model, { inputShape: [1, 1, 1], numClasses: 1 }); // throws the "unknown model" error
        if (!Number.isInteger(f.batchSize) || f.batchSize < 1)
          throw new TricksError(`--batch-size ${f.batchSize}: must be a positive integer`);
        const d = defaults(f.model);
        const backend = await services.backend.select(f.backend);
        const input = f.input ?? d.input,
          classes = f.classes ?? d.classes;
        let r;
        let onnx: { inferImagesPerSec: number; threads: number } | undefined;
        let microBatches = 1;
        if (f.workers > 1) {
          if (f.batchSize % f.workers)
            throw new TricksError(`--batch-size ${f.batchSize} does not split evenly over --workers ${f.workers}`);
          const ref = zooModelRef(f.model, input, d.channels, classes);
          r = await benchDataParallel({
            model: ref,
            workers: f.workers,
            batchSize: f.batchSize,
            steps: f.steps,
            warmup: f.warmup,
            backend,
            inputShape: [input, input, d.channels],
          });
        } else {
          const model = buildZooModel(f.model, input, d.channels, classes);
          // as `tricks train` plans it: micro-batches when a step of the batch would not fit the backend's memory
          const plan = planMicroBatches({
            model,
            modelName: f.model,
            inputShape: [input, input, d.channels],
            numClasses: classes,
            batchSize: f.batchSize,
            evalBatchSize: f.batchSize,
            memory: backend === 'wasm' ? wasmMemory : undefined,
            logger: f.json ? new MemoryLogger() : new ConsoleLogger(),
          });
          microBatches = plan.microBatches;
          r = await benchTrain({
            model,
            batchSize: f.batchSize,
            steps: f.steps,
            warmup: f.warmup,
            microBatches,
            inferBatchSize: plan.evalBatchSize,
          });
          if (f.onnx)
            onnx = await benchOnnxInference(model, {
              batchSize: f.batchSize,
              steps: f.steps,
              warmup: f.warmup,
              threads: f.threads ?? wasmKernelThreads(),
            });
          model.dispose();
        }
        const threads = f.workers > 1 ? f.workers : backend === 'wasm' ? wasmKernelThreads() : undefined;
        let peer: PeerResult | undefined;
        if (f.peer)
          peer = torchPeer(f.model, { batchSize: f.batchSize, input, classes, threads: threads ?? 1, steps: f.steps, warmup: f.warmup });
        const out = {
          model: f.model,
          batchSize: f.batchSize,
          backend: f.workers > 1 ? `${backend} x${f.workers} workers` : backend,
          threads,
          microBatches,
          trainImagesPerSec: r.trainImagesPerSec,
          inferImagesPerSec: r.inferImagesPerSec,
          ...(onnx ? { onnxInferImagesPerSec: onnx.inferImagesPerSec, onnxThreads: onnx.threads } : {}),
          ...(peer ? { peer } : {}),
        };
        const x = (a: number, b?: number) => (b ? `${(a / b).toFixed(2)}x` : '-');
        if (f.json) process.stdout.write(`${JSON.stringify(out)}\n`);
        else {
          process.stdout.write(
            `${f.model} batch ${f.batchSize}${microBatches > 1 ? ` (${microBatches} micro-batches)` : ''} on ${out.backend}${threads ? ` (${threads} threads)` : ''}: train ${out.trainImagesPerSec.toFixed(1)} img/s, inference ${out.inferImagesPerSec.toFixed(1)} img/s${onnx ? `; onnxruntime-node inference (${onnx.threads} threads) ${onnx.inferImagesPerSec.toFixed(1)} img/s` : ''}\n`,
          );
          if (peer?.error) process.stdout.write(`peer: ${peer.error}\n`);
          else if (peer)
            process.stdout.write(
              `${peer.peer} ${peer.model} (${peer.threads} threads): train ${peer.trainImagesPerSec!.toFixed(1)} img/s, inference ${peer.inferImagesPerSec!.toFixed(1)} img/s; ` +
                `tricks/PyTorch: train ${x(out.trainImagesPerSec, peer.trainImagesPerSec)}, inference ${x(out.inferImagesPerSec, peer.inferImagesPerSec)}` +
                `${onnx ? `, onnxruntime-node inference ${x(onnx.inferImagesPerSec, peer.inferImagesPerSec)}` : ''}\n`,
            );
        }
      },
    );
}
