# Copied from /work/shared/bench/torch_zoo_224.py (the peer anchor) for `npm run bench`s 224-px section (core/bench/src/bench-224.ts).
# Peer anchor: PyTorch CPU (Debian python3-torch, torchvision models) training and inference throughput of an
# ImageNet-size model on this machine. usage: torch_zoo_224.py MODEL BATCH [THREADS]
# MODEL: resnet18, resnet50, mobilenet_v3_small, mobilenet_v3_large, efficientnet_b0 (torchvision names).
import sys, time, torch, torchvision
name, B = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)
torch.manual_seed(0)
m = getattr(torchvision.models, name)(num_classes=1000)
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
x = torch.randn(B, 3, 224, 224); y = torch.randint(0, 1000, (B,))
def step():
    opt.zero_grad(); loss = torch.nn.functional.cross_entropy(m(x), y); loss.backward(); opt.step()
m.train(); step(); N = 2; t = time.time()
for _ in range(N): step()
tr = B * N / (time.time() - t)
m.eval()
with torch.no_grad():
    m(x); t = time.time()
    for _ in range(N): m(x)
    inf = B * N / (time.time() - t)
print(f"torch {name} B={B} 224px: train {tr:.1f} img/s, inference {inf:.1f} img/s")
