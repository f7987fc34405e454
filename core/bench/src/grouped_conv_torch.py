"""PyTorch peer for bench-zoo.ts: nn.Conv2d(groups=32) forward and forward+backward (input and weight grads)
on the ResNeXt-50 32x4d 3x3 shapes, one thread. Prints JSON {"s1": {"fwd": ms, "fwdbwd": ms}, ...}: best of N."""
import json, sys, time
import torch

torch.set_num_threads(1)
batch = int(sys.argv[1]) if len(sys.argv) > 1 else 8
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
shapes = {'s1': (56, 128), 's2': (28, 256), 's3': (14, 512), 's4': (7, 1024)}
out = {}
for name, (hw, c) in shapes.items():
    conv = torch.nn.Conv2d(c, c, 3, padding=1, groups=32, bias=False)
    x = torch.randn(batch, c, hw, hw, requires_grad=True)
    def fwd():
        with torch.no_grad():
            conv(x)
    def fwdbwd():
        y = conv(x)
        y.sum().backward()
    res = {}
    for key, fn in [('fwd', fwd), ('fwdbwd', fwdbwd)]:
        fn()
        best = float('inf')
        for _ in range(reps):
            t = time.perf_counter(); fn(); best = min(best, time.perf_counter() - t)
        res[key] = best * 1000
    out[name] = res
print(json.dumps(out))
