"""PyTorch eager reference for `cargo bench --bench train_speed`: the same networks
(MobileNet-V2, small-input variant: stem stride 1, one input channel, 10 classes, batch 128;
and the paper's at 224x224: stem stride 2, 3 channels, 1,000 classes, batch 32, width 1.0,
as torchvision builds it), optimiser and fake quantization, timed the same way.

Run by scripts/bench-train-speed, which alternates it with the Rust bench; alone:
`.venv/bin/python crates/haq-core/benches/train_speed_pytorch.py`. Environment:
HAQ_BENCH_STEPS (timed steps per line, default 20; 5 at 224), HAQ_BENCH_THREADS (default 2).

The network is written here rather than imported from torchvision so that nothing but
torch needs installing, and so that its layers are haq's exactly (the layer table of
Sandler et al. 2018, Table 2, with torchvision's rounding of widths to multiples of 8).
Fake quantization is PyTorch's own per-tensor op at max-abs scales on every conv and
linear layer's input and weights; haq's does a little more (trainable PACT clips).
"""

import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

STEPS = int(os.environ.get("HAQ_BENCH_STEPS", "20"))
STEPS_224 = int(os.environ.get("HAQ_BENCH_STEPS", "5"))
THREADS = int(os.environ.get("HAQ_BENCH_THREADS", "2"))
WARMUP_STEPS = 2
BITS = 4

# (expand ratio, output channels, repeats, first stride): the paper's Table 2.
STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1)]


def divisible(v, d=8):
    n = max(d, int(v + d / 2) // d * d)
    return n + d if n < 0.9 * v else n


def fake_quantize(t, signed):
    """Per-tensor linear fake quantization of `t` at its max-abs scale."""
    levels = 2 ** (BITS - 1) - 1 if signed else 2**BITS - 1
    clip = t.detach().abs().max().clamp_min(1e-8).item()
    lo = -levels if signed else 0
    return torch.fake_quantize_per_tensor_affine(t, clip / levels, 0, lo, levels)


class Conv(nn.Conv2d):
    quantize = False

    def forward(self, x):
        if Conv.quantize:
            return self._conv_forward(fake_quantize(x, signed=False),
                                      fake_quantize(self.weight, signed=True), None)
        return super().forward(x)


class Linear(nn.Linear):
    def forward(self, x):
        if Conv.quantize:
            return F.linear(fake_quantize(x, signed=False),
                            fake_quantize(self.weight, signed=True), self.bias)
        return super().forward(x)


def conv_bn(c_in, c_out, kernel, stride, groups, relu=True):
    layers = [Conv(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(c_out)]
    return layers + [nn.ReLU6(inplace=True)] if relu else layers


class InvertedResidual(nn.Module):
    def __init__(self, c_in, c_out, stride, expand):
        super().__init__()
        hidden = c_in * expand
        layers = conv_bn(c_in, hidden, 1, 1, 1) if expand != 1 else []
        layers += conv_bn(hidden, hidden, 3, stride, hidden)
        layers += conv_bn(hidden, c_out, 1, 1, 1, relu=False)
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


def mobilenet_v2(width, channels, stem_stride, classes):
    stem, last = divisible(32 * width), divisible(1280 * max(1.0, width))
    layers, c_in = conv_bn(channels, stem, 3, stem_stride, 1), stem
    for expand, c, repeats, stride in STAGES:
        c_out = divisible(c * width)
        for i in range(repeats):
            layers.append(InvertedResidual(c_in, c_out, stride if i == 0 else 1, expand))
            c_in = c_out
    layers += conv_bn(c_in, last, 1, 1, 1)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                         Linear(last, classes))


def rates(width, channels_last, quantize, imagenet):
    """(train, eval) images per second: Fashion-MNIST's shapes, or `imagenet`'s."""
    torch.manual_seed(0)
    size, channels, stride, classes, batch, steps = (
        (224, 3, 2, 1000, 32, STEPS_224) if imagenet else (28, 1, 1, 10, 128, STEPS))
    model = mobilenet_v2(width, channels, stride, classes)
    images = torch.randn(batch, channels, size, size)
    labels = torch.randint(0, classes, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    Conv.quantize = quantize
    opt = torch.optim.SGD(model.parameters(), lr=0.0 if quantize else 0.05, momentum=0.9, weight_decay=4e-5)
    model.train()
    for step in range(WARMUP_STEPS + steps):
        if step == WARMUP_STEPS:
            start = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        opt.step()
    train = steps * batch / (time.perf_counter() - start)
    model.eval()
    with torch.no_grad():
        for step in range(WARMUP_STEPS + steps):
            if step == WARMUP_STEPS:
                start = time.perf_counter()
            model(images)
    return train, steps * batch / (time.perf_counter() - start)


def main():
    torch.set_num_threads(THREADS)
    print(f"PyTorch {torch.__version__} eager, {THREADS} threads, {STEPS} timed steps "
          f"({STEPS_224} at 224)")
    for label, width, imagenet in (("0.5", 0.5, False), ("1.0", 1.0, False),
                                   ("1.0 224x224", 1.0, True)):
        for layout in ("NCHW", "channels-last"):
            for name, quantize in (("float", False), (f"w{BITS}a{BITS} fake-quant", True)):
                train, evaluate = rates(width, layout != "NCHW", quantize, imagenet)
                print(f"width {label} {layout} {name}: train {train:.0f} images/s | "
                      f"eval {evaluate:.0f} images/s", flush=True)


if __name__ == "__main__":
    main()
