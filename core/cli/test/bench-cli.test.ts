// `tricks bench --onnx --peer`: onnxruntime-node inference of the ONNX export, and the PyTorch twin in the same run.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const tricks = fileURLToPath(new URL('../../bin/tricks.js', import.meta.url));
const bench = (args: string[]) => {
  const r = spawnSync(process.execPath, [tricks, 'bench', '--steps', '1', '--warmup', '0', '--json', ...args], {
    encoding: 'utf8',
    timeout: 300000,
  });
  expect(r.status, r.stderr).to.equal(0);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown> & { peer?: Record<string, unknown> };
};
const torch = spawnSync(process.env.TORCH_PYTHON ?? '/usr/bin/python3', ['-c', 'import torch, torchvision'], { encoding: 'utf8' });

describe('tricks bench', function () {
  this.timeout(300000);

  it('--onnx times the ONNX export in onnxruntime-node beside the tfjs figures; --peer names the models without a PyTorch twin', () => {
    const r = bench(['--model', 'small-cnn', '--batch-size', '8', '--onnx', '--peer']);
    expect(r.trainImagesPerSec).to.be.above(0);
    expect(r.onnxInferImagesPerSec).to.be.above(0);
    expect(r.peer?.error).to.match(/no torchvision twin of small-cnn \(twins: .*resnet18/);
  });

  it('--peer trains and runs the torchvision twin in PyTorch', function () {
    if (torch.status !== 0) {
      console.log('    (skipped: no PyTorch for /usr/bin/python3; apt-get install -y python3-torch python3-torchvision)');
      this.skip();
    }
    const r = bench(['--model', 'resnet18-cifar', '--batch-size', '4', '--classes', '10', '--peer']);
    expect(r.peer?.model).to.equal('resnet18-cifar');
    expect(r.peer?.trainImagesPerSec).to.be.above(0);
    expect(r.peer?.inferImagesPerSec).to.be.above(0);
  });
});
