"""Runs a model written by `haq export-model --format onnx` with onnxruntime (the tests'
bridge to it; `scripts/setup` installs onnxruntime into .venv).

usage: .venv/bin/python scripts/onnx_logits.py MODEL IMAGES LOGITS C H W

IMAGES holds normalised images [N, C, H, W] as raw little-endian f32; their logits
[N, classes] are written to LOGITS the same way. Prints the model input's shape.
"""

import sys

import numpy as np
import onnxruntime as ort

model, images, logits, c, h, w = sys.argv[1:]
x = np.fromfile(images, dtype="<f4").reshape(-1, int(c), int(h), int(w))
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
session.run(["logits"], {"input": x})[0].astype("<f4").tofile(logits)
print(session.get_inputs()[0].shape)
