# The PyTorch peer of `tricks bench --peer torch`: training and inference images/s of the same architecture in
# PyTorch on this machine (CPU), on random data, timed as @tricks/lab's benchTrain times ours: SGD momentum steps
# with cross-entropy, then no-grad forward passes of the whole batch. Prints one JSON line.
# usage: torch_peer.py ZOO_NAME BATCH INPUT CLASSES THREADS STEPS WARMUP
import json, sys, time

name, B, S, K, T, N, W = sys.argv[1], *map(int, sys.argv[2:8])
try:
    import torch, torch.nn as nn, torchvision
except ImportError as e:
    print(json.dumps({"error": f"PyTorch is not installed for {sys.executable} ({e})"})); sys.exit(0)
torch.set_num_threads(T)
torch.manual_seed(0)
# tricks zoo name -> torchvision constructor; "-cifar" models take torchvision's with the CIFAR stem (3x3/1, no max-pool)
TV = {"resnet18": "resnet18", "resnet34": "resnet34", "resnet50": "resnet50", "resnext50-32x4d": "resnext50_32x4d",
      "mobilenetv3-small": "mobilenet_v3_small", "mobilenetv3-large": "mobilenet_v3_large",
      "efficientnet-b0": "efficientnet_b0", "swin-t": "swin_t"}
base = name[:-6] if name.endswith("-cifar") else name
if base not in TV or not hasattr(torchvision.models, TV[base]):
    print(json.dumps({"error": f"no torchvision twin of {name} (twins: {', '.join(sorted(TV))}, and their -cifar forms)"})); sys.exit(0)
m = getattr(torchvision.models, TV[base])(num_classes=K)
if name.endswith("-cifar"):
    m.conv1 = nn.Conv2d(3, m.conv1.out_channels, 3, 1, 1, bias=False); m.maxpool = nn.Identity()
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
x = torch.randn(B, 3, S, S); y = torch.randint(0, K, (B,))
def step():
    opt.zero_grad(); loss = nn.functional.cross_entropy(m(x), y); loss.backward(); opt.step(); return loss.item()
def timed(f):
    for _ in range(W): f()
    t = time.time()
    for _ in range(N): f()
    return B * N / (time.time() - t)
m.train(); train = timed(step)
m.eval()
with torch.no_grad():
    infer = timed(lambda: m(x))
print(json.dumps({"peer": f"PyTorch {torch.__version__}", "model": TV[base] + ("-cifar" if name.endswith("-cifar") else ""),
                  "threads": torch.get_num_threads(), "trainImagesPerSec": train, "inferImagesPerSec": infer}))
