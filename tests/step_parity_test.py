"""Step parity with the official CutMix and ReLabel training steps.

`tools/parity/official_steps.py` ran the official steps in PyTorch
(torchvision ResNet-18, 100 classes, 8 images of 64x64, 10 steps) and wrote
`tests/golden/step_parity.npz`. Here jaxmix's own pure train step
(`jaxmix.train.steps.train_step`, its SGD and AdamP, `jaxmix.apply_draw` of
the given CutMix draw and `jaxmix.relabel_targets`) runs from the same seeded weights, started
through the trainer's `init_from` path, on the same batch with the same
draws (lambda, box centre and permutation per step, from the golden file),
and must match within float32 tolerances.
"""

import functools
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

import jaxmix
from jaxmix import models
from jaxmix._src import boxes as boxes_lib
from jaxmix.models import torch_names
from jaxmix.train import augment, augment_schedule, build, optimizers, steps
from jaxmix.train import state as state_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools' / 'parity'))
import seeded  # noqa: E402

GOLDEN = ROOT / 'tests' / 'golden' / 'step_parity.npz'
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
OPTIMIZERS = {
  'sgd': dict(
    name='sgd', momentum=0.9, nesterov=True, weight_decay=1e-4, decay_mask='all'
  ),
  'adamp': dict(
    name='adamp',
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    weight_decay=1e-2,
    delta=0.1,
    wd_ratio=0.1,
    nesterov=True,
    decay_mask='all',
  ),
}
RECIPES = {
  'cutmix_sgd': dict(
    relabel=False, cutmix=True, optimizer='sgd', lr=0.1 * 8 / 256
  ),
  'relabel_sgd': dict(relabel=True, cutmix=False, optimizer='sgd', lr=0.1),
  'relabel_cutmix_adamp': dict(
    relabel=True, cutmix=True, optimizer='adamp', lr=2e-3
  ),
}
# Tolerances. The golden values are the official steps computed in float64;
# jaxmix runs in float32 (XLA on CPU). Measured differences in brackets.
#
# Step 0 and the first update are compared tightly: box, targets, logits,
# loss, gradient norm, the loss after one update and the BatchNorm running
# averages after one update.
FIRST = {
  'targets0': dict(rtol=0, atol=1e-6),  # [6e-9]
  'logits0': dict(rtol=0, atol=5e-5),  # [1.0e-5, logits up to 3.0]
  'loss01': dict(rtol=2e-5, atol=0),  # steps 0 and 1 [3.2e-6]
  'grad_norm0': dict(rtol=1e-5, atol=0),  # [9e-7]
  'stats1': dict(rtol=1e-5, scaled=1e-6),
}
# The whole 10-step trajectory. A batch of 8 with 2x2 maps in the last
# stage is ill-conditioned (some BatchNorm gradients nearly cancel and lose
# digits in float32), so float32 trajectories drift from the exact one:
# torch's own float32 run drifts as far (the golden file's meta records by
# how much: loss 1.6e-2 / 1.9e-4 / 1.5e-3 in the three recipes).
# `delta` compares how far each parameter moved (the optimiser's doing)
# relative to the largest move; `stats`, the final running averages of bn1
# and layer4.1.bn2 (first 8 channels), relative to the largest of them.
# XLA compiles for the host's instruction set, so the drift differs between
# CPUs: the bounds hold on every host measured (a second figure in brackets).
TRAJECTORY = {
  'cutmix_sgd': dict(
    loss=0.1,  # [3.8e-2]
    grad_norm=0.3,  # [9.9e-2]
    param_norms=3e-3,  # [6.9e-4]
    delta=2e-2,  # [5.4e-3]
    slices=1e-2,  # [3.2e-3]
    stats=0.1,  # [5.5e-2, layer4's mean]
  ),
  'relabel_sgd': dict(
    loss=1e-3,  # [1.0e-4]
    grad_norm=0.1,  # [2.1e-2]
    param_norms=4e-3,  # [7.9e-4]
    delta=5e-3,  # [1.0e-3]
    slices=5e-3,  # [1.0e-3]
    stats=0.1,  # [1.9e-2; 6.9e-2 on another x86-64 VM, layer4's mean]
  ),
  'relabel_cutmix_adamp': dict(
    loss=1e-3,  # [1.1e-4]
    grad_norm=0.15,  # [3.8e-2]
    param_norms=2e-2,  # [4.9e-3]
    delta=2e-3,  # [2.9e-4]
    slices=2e-2,  # [5.4e-3]
    stats=0.3,  # [0.18]: layer4's averages follow the drifting activations
  ),
}


@pytest.fixture(scope='module')
def golden():
  return dict(np.load(GOLDEN))


def _config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(
    {
      'seed': 0,
      'model': {
        'name': 'resnet18',
        'dtype': 'float32',
        # torch's running-variance rule, as the PyTorch recipes take it
        'kwargs': {'unbiased_running_var': True},
        'init_from': None,  # the weights come from the golden file
      },
      'data': {'num_classes': seeded.NUM_CLASSES},
    }
  )


def _box(lam: float, cx: int, cy: int) -> jaxmix.Box:
  """jaxmix's box rule for the given lambda and (integer) centre.

  CutMix-PyTorch names NCHW dim 2 'W': its `cx` is the row of the centre.
  """
  side = int(jnp.floor(seeded.SIZE * jnp.sqrt(1.0 - jnp.float32(lam))))
  return boxes_lib.centered_box(
    cx,
    cy,
    cut_height=side,
    cut_width=side,
    height=seeded.SIZE,
    width=seeded.SIZE,
  )


def _augment_fn(relabel: bool, cutmix: bool):
  def augment_fn(key, images, batch, schedule):
    del key, schedule  # the draws are given: the batch carries them
    if relabel:
      targets = jaxmix.relabel_targets(
        batch['scores'],
        batch['indices'],
        batch['crop'],
        num_classes=seeded.NUM_CLASSES,
        official_box_order=True,  # the official (y, x) order into roi_align
      )
    else:
      targets = jaxmix.one_hot(batch['label'], seeded.NUM_CLASSES)
    if cutmix:
      box = jaxmix.Box(*(batch['box'][i] for i in range(4)))
      height, width = images.shape[1:3]
      # The official label weight: the kept-pixel fraction.
      kept = 1.0 - jaxmix.box_area(box).astype(jnp.float32) / (height * width)
      draw = jaxmix.make_draw(
        weight=kept,
        partners=batch['perm'],
        box=box,
        height=height,
        width=width,
      )
      images, targets = jaxmix.apply_draw(
        (images, targets), draw, roles=('mask', 'target')
      )
    return augment.Augmented(images, targets, None)

  return augment_fn


def _run(name: str, golden: dict) -> dict:
  recipe = RECIPES[name]
  config = _config()
  tx = optimizers.create_optimizer(
    ml_collections.ConfigDict(OPTIMIZERS[recipe['optimizer']]), recipe['lr']
  )
  mesh = steps.create_mesh(jax.devices()[:1])
  model_def, state = state_lib.create_train_state(
    build.model_fn(config), tx, mesh=mesh
  )
  shapes = torch_names.torch_shapes(nnx.eval_shape(build.model_fn(config)))
  weights = seeded.state_dict(shapes, seeded.WEIGHT_SEED)
  state = build.import_torch_weights(
    config, state, tx, mesh=mesh, log=lambda *a: None, state_dict=weights
  )
  scores, indices = seeded.label_maps(
    seeded.DATA_SEED,
    seeded.BATCH,
    seeded.MAP_SIZE,
    seeded.TOP_K,
    seeded.NUM_CLASSES,
  )
  base = {
    'image': seeded.pixels(seeded.DATA_SEED, seeded.BATCH, seeded.SIZE),
    'label': seeded.labels(
      seeded.DATA_SEED, seeded.BATCH, seeded.NUM_CLASSES
    ).astype(np.int32),
    'scores': scores.transpose(0, 2, 3, 1),  # [B, k, S, S] -> [B, S, S, k]
    'indices': indices.transpose(0, 2, 3, 1).astype(np.int32),
    'crop': golden['crop_coords'],
  }
  kwargs = dict(
    augment_fn=_augment_fn(recipe['relabel'], recipe['cutmix']),
    config=steps.StepConfig(
      num_classes=seeded.NUM_CLASSES, mean=IMAGENET_MEAN, std=IMAGENET_STD
    ),
  )
  schedule = augment_schedule.Schedule(jnp.float32(1.0), jnp.float32(0.0))
  train_step = jax.jit(
    functools.partial(
      steps.train_step,
      model_def=model_def,
      tx=tx,
      learning_rate_fn=lambda step: recipe['lr'],
      **kwargs,
    )
  )

  @jax.jit
  def step0(state, batch):
    images, targets, _ = steps.inputs_and_targets(
      jax.random.key(0), batch, schedule, **kwargs
    )
    model = model_def.merge(state.params, state.batch_stats, train=True)
    return model(images), targets

  out = {'loss': [], 'grad_norm': [], 'box': []}
  for step in range(seeded.STEPS):
    box = _box(*(golden[f'draws/{k}'][step] for k in ('lam', 'cx', 'cy')))
    out['box'].append(
      [int(box.top), int(box.left), int(box.bottom), int(box.right)]
    )
    batch = dict(
      base,
      box=np.array(out['box'][-1], np.int32),
      perm=golden['draws/perm'][step].astype(np.int32),
    )
    if step == 0:
      out['logits0'], out['targets0'] = map(np.asarray, step0(state, batch))
    state, metrics = train_step(state, batch, schedule)
    out['loss'].append(float(metrics['loss']))
    out['grad_norm'].append(float(metrics['grad_norm']))
    if step == 0:
      after = model_def.merge(state.params, state.batch_stats, train=False)
      out['stats1'] = models.torch_state_dict(after)
  final = model_def.merge(state.params, state.batch_stats, train=False)
  out['state_dict'] = models.torch_state_dict(final)
  out['initial'] = weights
  return out


def _check_stats(got, want, prefix, batch_norms, rtol, scaled):
  """Running averages; `scaled`: atol as a fraction of the largest value.

  The model takes torch's running-variance rule (`unbiased_running_var`),
  so torch's running averages are compared as they are.
  """
  for bn in batch_norms:
    for key in (f'{bn}.running_mean', f'{bn}.running_var'):
      value = want[f'{prefix}/{key}']
      np.testing.assert_allclose(
        got[key][:8],
        value,
        rtol=rtol,
        atol=scaled * np.abs(value).max(),
        err_msg=key,
      )


@pytest.mark.slow  # three ResNet-18 train steps compiled, 30 steps run
@pytest.mark.parametrize('name', list(RECIPES))
def test_step_parity_with_the_official_code(name, golden):
  got = _run(name, golden)
  want = {
    k[len(name) + 1 :]: v for k, v in golden.items() if k.startswith(name)
  }
  counts = json.loads(str(golden['meta']))['stat_counts']
  # Step 0 and the first update.
  if RECIPES[name]['cutmix']:
    # jaxmix's box rule gives the official rand_bbox's box for these draws.
    np.testing.assert_array_equal(got['box'], want['box'])
  np.testing.assert_allclose(
    got['targets0'], want['targets0'], **FIRST['targets0']
  )
  np.testing.assert_allclose(
    got['logits0'], want['logits0'], **FIRST['logits0']
  )
  np.testing.assert_allclose(
    got['loss'][:2], want['loss'][:2], **FIRST['loss01']
  )
  np.testing.assert_allclose(
    got['grad_norm'][0], want['grad_norm'][0], **FIRST['grad_norm0']
  )
  _check_stats(got['stats1'], want, 'stat1', counts, **FIRST['stats1'])
  # The 10-step trajectory.
  tol = TRAJECTORY[name]
  np.testing.assert_allclose(got['loss'], want['loss'], rtol=tol['loss'])
  np.testing.assert_allclose(
    got['grad_norm'], want['grad_norm'], rtol=tol['grad_norm']
  )
  final, initial = got['state_dict'], got['initial']
  names = want['param_names']
  norms = [np.linalg.norm(final[n].astype(np.float64)) for n in names]
  np.testing.assert_allclose(
    norms, want['param_norms'], rtol=tol['param_norms']
  )
  deltas = [
    np.linalg.norm(final[n].astype(np.float64) - initial[n]) for n in names
  ]
  np.testing.assert_allclose(
    deltas, want['delta_norms'], atol=tol['delta'] * want['delta_norms'].max()
  )
  for key, index in seeded.SLICES.items():
    np.testing.assert_allclose(
      final[key][index], want[f'slice/{key}'], atol=tol['slices'], err_msg=key
    )
  _check_stats(final, want, 'stat', counts, 0, tol['stats'])
