#!/usr/bin/python3
"""Peer of core/bench/src/pipeline.ts: torchvision's DataLoader with the same transforms, images/s.

usage: pipeline_torch.py cifar DIR BATCH WORKERS   (CIFAR-10 binary files in DIR: data_batch_1.bin)
       pipeline_torch.py folder DIR BATCH WORKERS  (ImageFolder DIR/<class>/*.jpg, RandomResizedCrop 224)
Prints one line per epoch: "<images> images in <seconds> s: <rate> img/s" and the best as "best <rate> img/s".
"""
import sys
import time

import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, Dataset
import torchvision.transforms as T

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class CifarBin(Dataset):
    """The CIFAR-10 binary batches as torchvision.datasets.CIFAR10 holds them: uint8 HWC in memory, PIL per item."""

    def __init__(self, path, transform):
        raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3073)
        self.labels = raw[:, 0].astype(np.int64)
        self.data = raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.data[i])), self.labels[i]


def main():
    kind, path, batch, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    epochs = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    torch.set_num_threads(1)
    if kind == "cifar":
        tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])
        ds = CifarBin(path, tf)
    else:
        tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])
        ds = torchvision.datasets.ImageFolder(path, tf)
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                        persistent_workers=workers > 0)
    best = 0.0
    for e in range(epochs):
        t0 = time.perf_counter()
        n = 0
        for x, y in loader:
            n += x.shape[0]
        dt = time.perf_counter() - t0
        best = max(best, n / dt)
        print(f"epoch {e}: {n} images in {dt:.2f} s: {n / dt:.1f} img/s", flush=True)
    print(f"torch {torch.__version__} torchvision {torchvision.__version__} workers {workers}: best {best:.1f} img/s", flush=True)


if __name__ == "__main__":
    main()
