"""PyTorch's reference for benches/folder_loader.rs: torchvision's ImageFolder and
DataLoader with the transforms that match haq's folder pipeline (shorter side resized to
224 with a bilinear filter, centre crop, RandomCrop(224, padding=4), normalisation),
batches of 32, at 1 and 2 loader workers, one untimed pass first. Prints a line a worker
count, as the Rust bench does.

    python folder_loader_pytorch.py DIR [IMAGES]
"""

import sys
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

BATCH = 32


def main():
    root = sys.argv[1]
    images = int(sys.argv[2]) if len(sys.argv) > 2 else 512
    # The workers decode; the main process only collates, as haq's threads decode and its
    # libtorch thread normalises.
    torch.set_num_threads(1)
    transform = transforms.Compose([
        transforms.Resize(224, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(224),
        transforms.RandomCrop(224, padding=4),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    train = datasets.ImageFolder(f"{root}/train", transform=transform)
    generator = torch.Generator().manual_seed(0)
    subset = Subset(train, torch.randperm(len(train), generator=generator)[:images].tolist())
    for workers in (1, 2):
        loader = DataLoader(subset, batch_size=BATCH, shuffle=True, drop_last=True,
                            num_workers=workers, persistent_workers=True)
        for epoch in range(2):
            start = time.perf_counter()
            seen = sum(labels.shape[0] for _, labels in loader)
            if epoch == 1:
                rate = seen / (time.perf_counter() - start)
                print(f"pytorch workers {workers}: {rate:.0f} images/s", flush=True)
    # The ablation: PIL's JPEG decoding to RGB alone (libjpeg-turbo in Pillow's wheels).
    paths = [train.samples[i][0] for i in subset.indices]
    start = time.perf_counter()
    for path in paths:
        with Image.open(path) as image:
            image.convert("RGB").load()
    rate = len(paths) / (time.perf_counter() - start)
    print(f"pytorch decode-only workers 1: {rate:.0f} images/s", flush=True)


if __name__ == "__main__":
    main()
