"""Seeded inputs both sides of the parity checks rebuild: NumPy only.

The PyTorch scripts beside this file and jaxmix's tests regenerate the same
weights, images and label maps from a seed, so no weights are committed and
neither side needs the other's framework.

Weights (`state_dict`): each tensor is drawn on its own from
`numpy.random.default_rng([seed, crc32(name)])` as `lo + (hi - lo) * u`,
`u = rng.random(shape)` (float64, cast to float32), so the recipe depends
on the names and shapes only, not on the order of the state dict:

* `*.num_batches_tracked`: int64 zeros;
* `*.running_var`: U(0.5, 1.5) (positive);
* tensors of 2 or more dimensions (conv, linear, cls_token, pos_embed):
  U(-a, a) with `a = sqrt(3 / fan_in)`, `fan_in = prod(shape[1:])` in the
  torch layout (variance 1 / fan_in, so activations keep their scale);
* other `*.weight` (BatchNorm and LayerNorm scales): U(0.8, 1.2);
* everything else (biases, running means): U(-0.1, 0.1).

Only `Generator.random` is used (a fixed conversion of PCG64's output,
stable across NumPy versions), never `normal` or `beta`, whose algorithms
NumPy may change.

The step-parity setting (`official_steps.py`, `tests/step_parity_test.py`)
is fixed here too: sizes, seeds, crops, and which final tensors both sides
compare.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

# The step-parity setting: ResNet-18, 100 classes, 8 images of 64x64, 10
# steps, 15x15 top-5 label maps.
NUM_CLASSES, BATCH, SIZE, STEPS = 100, 8, 64, 10
MAP_SIZE, TOP_K = 15, 5
WEIGHT_SEED, DATA_SEED, DRAW_SEED = 1, 2, 3
# Final tensors (torch names and layouts) whose slices are compared.
SLICES = {
  'conv1.weight': (slice(0, 2), slice(None), slice(0, 2), slice(0, 2)),
  'layer2.0.downsample.0.weight': (slice(0, 3), slice(0, 4), 0, 0),
  'layer4.1.conv2.weight': (slice(0, 2), slice(0, 3), 1, slice(None)),
  'layer4.1.bn2.weight': (slice(0, 8),),
  'fc.weight': (slice(0, 4), slice(0, 6)),
  'fc.bias': (slice(0, 8),),
}
# BatchNorms whose running averages (first 8 channels) are compared, and
# the number of values per channel behind each of their batch statistics
# (batch x height x width at 64 px input).
STATS = {'bn1': BATCH * 32 * 32, 'layer4.1.bn2': BATCH * 2 * 2}


def _uniform(seed: int, name: str, shape, lo: float, hi: float) -> np.ndarray:
  rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
  return (lo + (hi - lo) * rng.random(shape)).astype(np.float32)


def tensor(name: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
  """The seeded value of the state-dict tensor `name` (torch layout)."""
  shape = tuple(int(n) for n in shape)
  if name.endswith('num_batches_tracked'):
    return np.zeros(shape, np.int64)
  if name.endswith('running_var'):
    return _uniform(seed, name, shape, 0.5, 1.5)
  if len(shape) >= 2:
    a = math.sqrt(3.0 / math.prod(shape[1:]))
    return _uniform(seed, name, shape, -a, a)
  if name.endswith('weight'):
    return _uniform(seed, name, shape, 0.8, 1.2)
  return _uniform(seed, name, shape, -0.1, 0.1)


def state_dict(shapes: dict[str, tuple[int, ...]], seed: int) -> dict:
  """`{name: tensor(name, shape, seed)}` for a state dict's names/shapes."""
  return {name: tensor(name, shape, seed) for name, shape in shapes.items()}


def images(seed: int, count: int, size: int) -> np.ndarray:
  """Normalised-looking float32 images `[count, size, size, 3]` in [-2, 2)."""
  rng = np.random.default_rng([seed, 1])
  return (4.0 * rng.random((count, size, size, 3)) - 2.0).astype(np.float32)


def pixels(seed: int, count: int, size: int) -> np.ndarray:
  """uint8 pixels `[count, size, size, 3]`."""
  rng = np.random.default_rng([seed, 2])
  return np.floor(256.0 * rng.random((count, size, size, 3))).astype(np.uint8)


def labels(seed: int, count: int, num_classes: int) -> np.ndarray:
  """int64 class labels `[count]`."""
  rng = np.random.default_rng([seed, 3])
  return np.floor(num_classes * rng.random(count)).astype(np.int64)


def label_maps(
  seed: int, count: int, size: int, top_k: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
  """Top-k label maps as the official ReLabel release stores them.

  Returns:
    `scores` float32 `[count, top_k, size, size]` in [0, 10) (annotator
    logits) and `indices` int64 of the same shape: at each cell `top_k`
    distinct classes, the order of the `top_k` smallest of K uniforms.
  """
  rng = np.random.default_rng([seed, 4])
  scores = (10.0 * rng.random((count, top_k, size, size))).astype(np.float32)
  keys = rng.random((count, size, size, num_classes))
  indices = np.argsort(keys, axis=-1, kind='stable')[..., :top_k]
  return scores, indices.transpose(0, 3, 1, 2).astype(np.int64)


def crop_coords() -> np.ndarray:
  """Asymmetric crops `(top, left, bottom, right)`, normalised, `[B, 4]`.

  The official ReLabel loader's coordinates after `coords[:, 2:] +=
  coords[:, :2]`: `(i / H, j / W, (i + h) / H, (j + w) / W)`.
  """
  rng = np.random.default_rng([DATA_SEED, 5])
  top, left = 0.5 * rng.random(BATCH), 0.5 * rng.random(BATCH)
  height = 0.2 + 0.5 * rng.random(BATCH)
  width = 0.1 + 0.3 * rng.random(BATCH)
  return np.stack([top, left, top + height, left + width], 1).astype('f4')
