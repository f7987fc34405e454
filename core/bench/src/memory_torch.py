# Bytes PyTorch's autograd saves for backward in one training forward at 224 px, per image: every tensor
# packed by saved_tensors_hooks, counted once per storage (views of one storage share it). Parameters are
# left out (they are not activations). Used by core/bench/src/memory.ts.
import sys
import torch
import torchvision

name = sys.argv[1]
torch.manual_seed(0)
model = getattr(torchvision.models, name)(num_classes=1000)
model.train()
params = {p.untyped_storage().data_ptr() if hasattr(p, "untyped_storage") else p.storage().data_ptr() for p in model.parameters()}


def storage(t):
    return t.untyped_storage() if hasattr(t, "untyped_storage") else t.storage()


def saved(m):
    seen = {}

    def pack(t):
        s = storage(t)
        ptr = s.data_ptr()
        if ptr not in params:
            seen[ptr] = s.nbytes() if hasattr(s, "nbytes") else s.size() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        x = torch.randn(m, 3, 224, 224)
        loss = torch.nn.functional.cross_entropy(model(x), torch.zeros(m, dtype=torch.long))
    loss.backward()
    return sum(seen.values())


a, b = saved(1), saved(3)
print("saved_per_image_bytes", int((b - a) / 2))
