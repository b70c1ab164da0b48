"""The official training steps of CutMix and ReLabel, in PyTorch: goldens.

Run by hand in an environment with torch, torchvision, NumPy and the
authors' `adamp` package (torch is never a jaxmix dependency), from the
repository root:

  pip install torch torchvision numpy adamp
  python tools/parity/official_steps.py   # writes tests/golden/step_parity.npz

`tests/step_parity_test.py` runs jaxmix's own train step
(`jaxmix.train.steps.train_step` with jaxmix's optimisers, CutMix applier
and ReLabel pooling) on the same weights, batch and draws and compares.

Setting: torchvision ResNet-18 with 100 classes, weights from
`seeded.state_dict(..., seed=1)`, one fixed batch of 8 seeded 64x64 images
(uint8, normalised with the ImageNet mean and std, as ToTensor + Normalize
do), 10 steps at a constant learning rate, BatchNorm in training mode
(torch's defaults: momentum 0.1, eps 1e-5). The golden values are computed
in float64 (the model, targets and optimiser in double precision), so they
are the official step's exact values and the tolerances of the float32
test measure float32 rounding only; the same steps are also run in float32
and how far torch's own float32 run lands from the float64 one is written to
the file's `meta` (a batch of 8 with 2x2 maps in the last stage is
ill-conditioned: some BatchNorm gradients lose digits in float32). Each
step draws, from seeded generators, lambda ~ Beta(1, 1) and the box centre
with NumPy and the permutation with `torch.randperm`, as the official loops
do; the draws are written to the golden file, so jaxmix's side uses
exactly them.

Recipes, transcribed from the official code (read at CutMix-PyTorch 2d8eb68
and relabel_imagenet 3d4824f):

* 'cutmix_sgd' (CutMix-PyTorch `train.py`, ImageNet): `rand_bbox` (the
  box side `int(W * sqrt(1 - lam))`, `centre +- side // 2`, clipped; dim 2
  is named W there), the same box pasted into every image from
  `input[perm]`, lambda adjusted to the kept-pixel fraction, loss
  `lam * CE(out, y) + (1 - lam) * CE(out, y[perm])`;
  `SGD(lr, momentum=0.9, weight_decay=1e-4, nesterov=True)` on all
  parameters (`nesterov=True` is hard-coded there); lr 0.1 * 8 / 256 (the
  official 0.1 for 256 images, scaled to the batch of 8).
* 'relabel_sgd' (relabel_imagenet, `relabel_train_resnet50.yaml`): targets
  = `softmax(roi_align(dense_maps, coords * 15 - 0.5, output_size=(1, 1)))`
  with `dense_maps` the top-5 maps scattered into zeros `[B, K, 15, 15]`
  (`get_labelmaps`, `get_relabel`) and `coords` the crop as
  `(top, left, bottom, right)` normalised, passed to roi_align in that
  order (which reads `(x1, y1, x2, y2)`); soft-target CE; SGD, nesterov,
  momentum 0.9, wd 1e-4, lr 0.1.
* 'relabel_cutmix_adamp' (`relabel_train_resnet50_cutmix.yaml`): the same
  targets, then `cutmix_batch` (prob 1, beta 1, smoothing 0: the box as
  above, `t = lam * t + (1 - lam) * t[perm]`); `AdamP(lr=2e-3, betas=(0.9,
  0.999), weight_decay=1e-2, nesterov=True)` (delta 0.1, wd_ratio 0.1).

Recorded per recipe: the loss and the gradient norm of each step (before
the update), the logits and soft targets of step 0 `[8, 100]`, the norm of
every final parameter and of its change over the 10 steps (the optimiser's
doing), the box of each step, slices of a few final tensors and of two
BatchNorms' running averages, with the number of values per channel behind
each batch statistic, after the first step and after the last (torch
updates running_var with the unbiased variance; the test's jaxmix model
does too, `unbiased_running_var=True`, and compares them as they are).
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from adamp import AdamP
from torchvision.ops import roi_align

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import seeded  # noqa: E402
from seeded import (  # noqa: E402
  BATCH,
  DATA_SEED,
  DRAW_SEED,
  MAP_SIZE,
  NUM_CLASSES,
  SIZE,
  SLICES,
  STATS,
  STEPS,
  TOP_K,
  WEIGHT_SEED,
  crop_coords,
)

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
RECIPES = {
  # The official 0.1 is for a batch of 256; from random weights on a batch
  # of 8 it diverges (the loss climbs from 5 to 17 in five steps, and
  # torch's own float32 run ends 100 % away from its float64 run), so the
  # lr is scaled to the batch by the linear rule, 0.1 * 8 / 256.
  'cutmix_sgd': dict(
    targets='labels', cutmix=True, optimizer='sgd', lr=0.1 * 8 / 256
  ),
  'relabel_sgd': dict(targets='relabel', cutmix=False, optimizer='sgd', lr=0.1),
  'relabel_cutmix_adamp': dict(
    targets='relabel', cutmix=True, optimizer='adamp', lr=2e-3
  ),
}


def rand_bbox(size, lam, cx, cy):
  """CutMix-PyTorch's `rand_bbox` with its random centre given."""
  w, h = size[2], size[3]
  cut_rat = np.sqrt(1.0 - lam)
  cut_w, cut_h = int(w * cut_rat), int(h * cut_rat)
  bbx1 = np.clip(cx - cut_w // 2, 0, w)
  bby1 = np.clip(cy - cut_h // 2, 0, h)
  bbx2 = np.clip(cx + cut_w // 2, 0, w)
  bby2 = np.clip(cy + cut_h // 2, 0, h)
  return int(bbx1), int(bby1), int(bbx2), int(bby2)


def dense_label_maps(scores, indices):
  """`get_labelmaps`: top-k maps scattered into zeros `[B, K, S, S]`."""
  maps = torch.zeros(
    scores.shape[0], NUM_CLASSES, MAP_SIZE, MAP_SIZE, dtype=scores.dtype
  )
  for dense, s, i in zip(maps, scores, indices):
    dense.scatter_(0, i.long(), s)
  return maps


def relabel_targets(maps, coords):
  """`get_relabel`: RoIAlign 1x1 over the crop, softmax over K."""
  n = maps.shape[0]
  boxes = torch.cat(
    [torch.arange(n).view(n, 1).to(maps), coords.to(maps) * maps.size(3) - 0.5],
    1,
  )
  pooled = roi_align(input=maps, boxes=boxes, output_size=(1, 1))
  return F.softmax(pooled.squeeze(), 1)


def soft_target_ce(logits, target):
  return torch.sum(-target * F.log_softmax(logits, dim=-1), dim=-1).mean()


def draws():
  """Per step: lam ~ Beta(1, 1), the box centre, the permutation."""
  rng = np.random.RandomState(DRAW_SEED)
  gen = torch.Generator().manual_seed(DRAW_SEED)
  out = {'lam': [], 'cx': [], 'cy': [], 'perm': []}
  for _ in range(STEPS):
    out['lam'].append(rng.beta(1.0, 1.0))
    out['cx'].append(rng.randint(SIZE))
    out['cy'].append(rng.randint(SIZE))
    out['perm'].append(torch.randperm(BATCH, generator=gen).numpy())
  return {k: np.asarray(v) for k, v in out.items()}


def make_optimizer(name, params, lr):
  if name == 'sgd':
    return torch.optim.SGD(
      params, lr, momentum=0.9, weight_decay=1e-4, nesterov=True
    )
  return AdamP(params, lr, betas=(0.9, 0.999), weight_decay=1e-2, nesterov=True)


def run(recipe, weights, inputs, labels, maps, coords, drawn, dtype):
  """Ten official steps in `dtype`; the records of the golden file."""
  model = torchvision.models.resnet18(num_classes=NUM_CLASSES)
  model.load_state_dict(
    {k: torch.from_numpy(v) for k, v in weights.items()}, strict=True
  )
  model.to(dtype).train()
  inputs, coords = inputs.to(dtype), coords.to(dtype)
  maps = (maps[0].to(dtype), maps[1])
  optimizer = make_optimizer(
    recipe['optimizer'], model.parameters(), recipe['lr']
  )
  record = {'loss': [], 'grad_norm': [], 'box': [], 'lam_adjusted': []}
  for step in range(STEPS):
    image = inputs.clone()
    if recipe['targets'] == 'relabel':
      target = relabel_targets(dense_label_maps(*maps), coords)
    else:
      target = F.one_hot(labels, NUM_CLASSES).to(dtype)
    lam, perm = 1.0, None
    if recipe['cutmix']:
      perm = torch.from_numpy(drawn['perm'][step])
      box = rand_bbox(
        image.size(), drawn['lam'][step], drawn['cx'][step], drawn['cy'][step]
      )
      bbx1, bby1, bbx2, bby2 = box
      image[:, :, bbx1:bbx2, bby1:bby2] = image[perm, :, bbx1:bbx2, bby1:bby2]
      lam = 1 - (
        (bbx2 - bbx1) * (bby2 - bby1) / (image.size()[-1] * image.size()[-2])
      )
      record['box'].append(box)
      record['lam_adjusted'].append(lam)
    output = model(image)
    if recipe['cutmix'] and recipe['targets'] == 'labels':
      # CutMix-PyTorch: two cross-entropies against the two label sets.
      loss = F.cross_entropy(output, labels) * lam + F.cross_entropy(
        output, labels[perm]
      ) * (1.0 - lam)
      target = lam * target + (1.0 - lam) * target[perm]  # its soft form
    else:
      if recipe['cutmix']:  # relabel_imagenet's cutmix_batch, smoothing 0
        target = lam * target + (1.0 - lam) * target[perm]
      loss = soft_target_ce(output, target)
    if step == 0:
      record['logits0'] = output.detach().numpy().copy()
      record['targets0'] = target.numpy().copy()
    optimizer.zero_grad()
    loss.backward()
    record['grad_norm'].append(
      math.sqrt(
        sum(float((p.grad.double() ** 2).sum()) for p in model.parameters())
      )
    )
    record['loss'].append(loss.item())
    optimizer.step()
    if step == 0:  # one update of the running averages, before any chaos
      state = model.state_dict()
      for name in STATS:
        for stat in ('running_mean', 'running_var'):
          key = f'{name}.{stat}'
          record[f'stat1/{key}'] = state[key][:8].double().numpy().copy()
  final = {
    k: v.detach().double().numpy() for k, v in model.state_dict().items()
  }
  names = [n for n, _ in model.named_parameters()]
  out = {
    'loss': np.array(record['loss']),
    'grad_norm': np.array(record['grad_norm']),
    'logits0': record['logits0'],
    'targets0': record['targets0'],
    'param_names': np.array(names),
    'param_norms': np.array([np.linalg.norm(final[n]) for n in names]),
    # The optimiser's doing: how far each parameter moved in 10 steps.
    'delta_norms': np.array(
      [np.linalg.norm(final[n] - weights[n].astype(np.float64)) for n in names]
    ),
  }
  if recipe['cutmix']:
    out['box'] = np.array(record['box'], np.int64)
    out['lam_adjusted'] = np.array(record['lam_adjusted'])
  for name, index in SLICES.items():
    out[f'slice/{name}'] = final[name][index]
  for name in STATS:
    for stat in ('running_mean', 'running_var'):
      out[f'stat/{name}.{stat}'] = final[f'{name}.{stat}'][:8]
      out[f'stat1/{name}.{stat}'] = record[f'stat1/{name}.{stat}']
  return out


def main() -> None:
  torch.manual_seed(0)
  torch.use_deterministic_algorithms(True)
  torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
  shapes = {
    k: tuple(v.shape)
    for k, v in torchvision.models.resnet18(num_classes=NUM_CLASSES)
    .state_dict()
    .items()
  }
  weights = seeded.state_dict(shapes, WEIGHT_SEED)
  pixels = seeded.pixels(DATA_SEED, BATCH, SIZE)
  # ToTensor + Normalize: [0, 1], then (x - mean) / std, NCHW.
  normalised = (pixels.astype(np.float32) / 255.0 - MEAN) / STD
  inputs = torch.from_numpy(normalised.transpose(0, 3, 1, 2).copy())
  labels = torch.from_numpy(seeded.labels(DATA_SEED, BATCH, NUM_CLASSES))
  scores, indices = seeded.label_maps(
    DATA_SEED, BATCH, MAP_SIZE, TOP_K, NUM_CLASSES
  )
  maps = (torch.from_numpy(scores), torch.from_numpy(indices))
  coords = crop_coords()
  drawn = draws()
  arrays = {f'draws/{k}': v for k, v in drawn.items()}
  arrays['crop_coords'] = coords
  coords = torch.from_numpy(coords)
  spread = {}
  for name, recipe in RECIPES.items():
    args = (recipe, weights, inputs, labels, maps, coords, drawn)
    result = run(*args, torch.float64)
    arrays.update({f'{name}/{k}': v for k, v in result.items()})
    # The same steps in float32: how far torch's own float32 run is from
    # the reference, the yardstick for jaxmix's (also float32) tolerances.
    single = run(*args, torch.float32)
    spread[name] = {
      k: float(np.max(np.abs(single[k] - result[k]) / np.abs(result[k])))
      for k in ('loss', 'grad_norm', 'param_norms')
    }
    # Deltas relative to the largest one (tiny deltas carry tiny weight).
    spread[name]['delta_norms'] = float(
      np.max(np.abs(single['delta_norms'] - result['delta_norms']))
      / np.max(result['delta_norms'])
    )
    print(name, 'loss', np.round(result['loss'], 5).tolist(), spread[name])
  meta = {
    'torch': torch.__version__,
    'torchvision': torchvision.__version__,
    'recipes': RECIPES,
    'num_classes': NUM_CLASSES,
    'batch': BATCH,
    'image_size': SIZE,
    'steps': STEPS,
    'seeds': {'weights': WEIGHT_SEED, 'data': DATA_SEED, 'draws': DRAW_SEED},
    'stat_counts': STATS,
    'reference_dtype': 'float64',
    'torch_float32_max_rel_diff': spread,
  }
  arrays['meta'] = np.array(json.dumps(meta, indent=1, sort_keys=True))
  out = os.path.join(ROOT, 'tests', 'golden', 'step_parity')
  np.savez_compressed(out, **arrays)
  print(f'wrote {out}.npz')


if __name__ == '__main__':
  main()
