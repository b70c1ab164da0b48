"""Golden outputs of every public op, sampler, applier and loss of jaxmix.

The outputs of each case below, over a grid of keys, knobs, image dtypes
(float32, bfloat16, float16, uint8 where accepted) and label forms (dense,
integer with `num_classes`, with and without smoothing), are recorded as
SHA-256 digests of their bytes, dtypes and shapes in
`tests/golden/ops_outputs.json`. The test recomputes them and compares bit
for bit, so a refactoring that changes any output by one bit fails and names
the case. The old spellings (the `draw_*` samplers, the tuple form of
`sample_cutmix`, the `*_with_*` appliers, the occlusions called with labels)
are recorded too: they must keep their values while they are deprecated.

Regenerate (only when an output is meant to change, and say why):

  JAX_PLATFORMS=cpu XLA_FLAGS=--xla_force_host_platform_device_count=8 \
    PYTHONPATH=. python tests/ops_golden_test.py --write
"""

import functools
import hashlib
import itertools
import json
import pathlib
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix

GOLDEN = pathlib.Path(__file__).parent / 'golden' / 'ops_outputs.json'
B, H, W, C, K, T = 4, 8, 8, 3, 5, 4
SEEDS = (0, 7)
FLOATS = ('float32', 'bfloat16', 'float16')
ALL_DTYPES = (*FLOATS, 'uint8')


def _inputs():
  rng = np.random.default_rng(2024)
  base = rng.normal(size=(B, H, W, C)).astype(np.float32)
  video = rng.normal(size=(B, T, H, W, C)).astype(np.float32)
  soft = rng.normal(size=(B, K)).astype(np.float32)
  return {
    'images': base,
    'images_uint8': rng.integers(0, 256, (B, H, W, C)).astype(np.uint8),
    'minority': rng.normal(size=(B, H, W, C)).astype(np.float32),
    'minority_uint8': rng.integers(0, 256, (B, H, W, C)).astype(np.uint8),
    'video': video,
    'video_uint8': rng.integers(0, 256, (B, T, H, W, C)).astype(np.uint8),
    'dense': np.asarray(jax.nn.softmax(soft, axis=-1)),
    'minority_dense': np.eye(K, dtype=np.float32)[rng.integers(0, K, B)],
    'ints': rng.integers(0, K, B).astype(np.int32),
    'saliency': rng.random((B, 4, 4)).astype(np.float32),
    'tokens': rng.normal(size=(B, 4, 4, 6)).astype(np.float32),
    'token_soft': np.asarray(
      jax.nn.softmax(rng.normal(size=(B, 4, 4, K)), axis=-1), np.float32
    ),
    'token_ints': rng.integers(0, K, (B, 4, 4)).astype(np.int32),
    'scores': rng.normal(size=(B, 3, 3, 2)).astype(np.float32) * 3,
    'indices': rng.integers(0, K, (B, 3, 3, 2)).astype(np.int32),
    'crops': np.array(
      [[0.0, 0.0, 1.0, 1.0], [0.1, 0.2, 0.9, 0.7]] * (B // 2), np.float32
    ),
    'flips': np.array([False, True] * (B // 2)),
    'logits': rng.normal(size=(B, K)).astype(np.float32),
    'token_logits': rng.normal(size=(B, 4, 4, K)).astype(np.float32),
  }


X = _inputs()


def _images(dtype, name='images'):
  if dtype == 'uint8':
    return jnp.asarray(X[f'{name}_uint8'])
  return jnp.asarray(X[name]).astype(dtype)


def _labels(form):
  """`(labels, extra knobs)` of a label form."""
  if form == 'dense':
    return jnp.asarray(X['dense']), {}
  if form == 'dense_bf16':
    return jnp.asarray(X['dense']).astype(jnp.bfloat16), {}
  if form == 'int':
    return jnp.asarray(X['ints']), {'num_classes': K}
  return jnp.asarray(X['ints']), {'num_classes': K, 'smoothing': 0.1}


LABEL_FORMS = ('dense', 'dense_bf16', 'int', 'int_smooth')


def _quiet(fn, *args, **kwargs):
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', DeprecationWarning)
    return fn(*args, **kwargs)


def _image_op_cases(name, op, variants, dtypes, forms=LABEL_FORMS):
  cases = {}
  for (tag, knobs), dtype, form, seed in itertools.product(
    variants.items(), dtypes, forms, SEEDS
  ):

    def case(knobs=knobs, dtype=dtype, form=form, seed=seed):
      labels, label_knobs = _labels(form)
      return op(
        jax.random.key(seed), _images(dtype), labels, **knobs, **label_knobs
      )

    cases[f'{name}/{tag}/{dtype}/{form}/{seed}'] = case
  return cases


def _draw_fields(draw):
  return {
    'weight': draw.weight,
    'partners': draw.partners,
    'blend': draw.blend,
    'box': tuple(draw.box),
    'frames': None if draw.frames is None else tuple(draw.frames),
    'static': np.array([draw.height, draw.width, draw.num_frames or 0]),
  }


def _tuple_cutmix(key, **knobs):
  """The tuple form of `sample_cutmix`, its box broadcast to ``[B]``."""
  with warnings.catch_warnings():  # The unpacking is what is deprecated.
    warnings.simplefilter('ignore', DeprecationWarning)
    box, partners, weight = jaxmix.sample_cutmix(key, **knobs)
  box = jaxmix.Box(*(jnp.broadcast_to(f, (B,)) for f in box))
  if weight is None:
    weight = 1.0 - jaxmix.box_area(box).astype(jnp.float32) / (H * W)
  return tuple(box), partners, jnp.broadcast_to(weight, (B,))


def _cases():
  cases = {}
  # ---------------------------------------------------------------- ops
  cases.update(
    _image_op_cases(
      'mixup',
      jaxmix.mixup,
      {
        'default': {},
        'a1_p05': {'alpha': 1.0, 'prob': 0.5},
        'elem': {'alpha': 0.4, 'per_example': True},
        'elem_p05': {'alpha': 1.0, 'prob': 0.5, 'per_example': True},
      },
      FLOATS,
    )
  )
  cases.update(
    _image_op_cases(
      'cutmix',
      jaxmix.cutmix,
      {
        'default': {},
        'a05_p07': {'alpha': 0.5, 'prob': 0.7},
        'elem': {'per_example': True},
        'uncorrected': {'correct_lam': False, 'alpha': 0.3},
        'minmax': {'minmax': (0.2, 0.8)},
        'elem_minmax_p05': {
          'minmax': (0.3, 0.6),
          'per_example': True,
          'prob': 0.5,
        },
      },
      ALL_DTYPES,
    )
  )
  moc = functools.partial(jaxmix.mixup_or_cutmix)
  cases.update(
    _image_op_cases(
      'mixup_or_cutmix',
      moc,
      {
        'default': {'mixup_alpha': 0.8, 'cutmix_alpha': 1.0},
        'elem': {'mixup_alpha': 0.8, 'cutmix_alpha': 1.0, 'per_example': True},
        'pairs': {'mixup_alpha': 0.8, 'cutmix_alpha': 1.0, 'pairs': True},
        'mix_only': {'mixup_alpha': 1.0, 'cutmix_alpha': 0.0},
        'minmax': {
          'mixup_alpha': 0.5,
          'cutmix_alpha': 1.0,
          'minmax': (0.2, 0.8),
          'switch_prob': 0.3,
          'prob': 0.8,
          'per_example': True,
        },
        'uncorrected': {
          'mixup_alpha': 0.8,
          'cutmix_alpha': 1.0,
          'correct_lam': False,
          'per_example': True,
        },
      },
      FLOATS,
    )
  )
  cases.update(
    _image_op_cases(
      'mixup_or_cutmix',
      moc,
      {
        'cut_only': {'mixup_alpha': 0, 'cutmix_alpha': 1.0},
        'cut_only_elem': {
          'mixup_alpha': 0,
          'cutmix_alpha': 1.0,
          'per_example': True,
        },
      },
      ALL_DTYPES,
    )
  )
  for mode, elem, dtype, form, seed in itertools.product(
    ('spatial', 'temporal', 'cuboid'),
    (False, True),
    ALL_DTYPES,
    ('dense', 'int'),
    SEEDS,
  ):

    def case(mode=mode, elem=elem, dtype=dtype, form=form, seed=seed):
      labels, knobs = _labels(form)
      return jaxmix.videomix(
        jax.random.key(seed),
        _images(dtype, 'video'),
        labels,
        mode=mode,
        per_example=elem,
        prob=0.8,
        **knobs,
      )

    cases[f'videomix/{mode}/{elem}/{dtype}/{form}/{seed}'] = case
  cases.update(
    _image_op_cases(
      'saliency_cutmix',
      lambda key, images, labels, **kw: jaxmix.saliency_cutmix(
        key, images, labels, saliency=jnp.asarray(X['saliency']), **kw
      ),
      {
        'default': {},
        'elem': {'per_example': True, 'alpha': 0.5},
        'p05': {'prob': 0.5},
      },
      ALL_DTYPES,
    )
  )
  for tag, knobs in {
    'p1': {'prob': 1.0},
    'elem_p05': {'prob': 0.5, 'per_example': True},
    'a05': {'alpha': 0.5, 'prob': 1.0},
  }.items():
    for dtype, form, seed in itertools.product(
      ALL_DTYPES, ('dense', 'dense_bf16'), SEEDS
    ):

      def case(knobs=knobs, dtype=dtype, form=form, seed=seed):
        labels, _ = _labels(form)
        return jaxmix.cmo(
          jax.random.key(seed),
          _images(dtype),
          labels,
          _images(dtype, 'minority'),
          jnp.asarray(X['minority_dense']).astype(labels.dtype),
          **knobs,
        )

      cases[f'cmo/{tag}/{dtype}/{form}/{seed}'] = case
  for tag, knobs in {
    'default': {},
    'elem': {'per_example': True},
    'p05': {'prob': 0.5, 'alpha': 0.5},
  }.items():
    for dtype, token_form, seed in itertools.product(
      ('float32', 'bfloat16', 'float16'), ('soft', 'ints'), SEEDS
    ):

      def case(knobs=knobs, dtype=dtype, token_form=token_form, seed=seed):
        return jaxmix.mixtoken(
          jax.random.key(seed),
          jnp.asarray(X['tokens']).astype(dtype),
          jnp.asarray(X['dense']),
          jnp.asarray(X[f'token_{token_form}']),
          **knobs,
        )

      cases[f'mixtoken/{tag}/{dtype}/{token_form}/{seed}'] = case
  maps = (
    jnp.asarray(X['scores']),
    jnp.asarray(X['indices']),
    jnp.asarray(X['crops']),
    jnp.asarray(X['flips']),
  )
  for localized, elem, order, dtype, seed in itertools.product(
    (False, True), (False, True), (False, True), FLOATS, SEEDS
  ):

    def case(
      localized=localized, elem=elem, order=order, dtype=dtype, seed=seed
    ):
      return jaxmix.relabel_cutmix(
        jax.random.key(seed),
        _images(dtype),
        *maps,
        num_classes=K,
        per_example=elem,
        localized=localized,
        official_box_order=order,
        temperature=0.7 if elem else 1.0,
        prob=0.9,
      )

    cases[f'relabel_cutmix/{localized}/{elem}/{order}/{dtype}/{seed}'] = case
  for order in (False, True):
    cases[f'relabel_targets/{order}'] = functools.partial(
      jaxmix.relabel_targets,
      *maps[:3],
      num_classes=K,
      official_box_order=order,
      temperature=0.5,
    )
    cases[f'pool_label_map/{order}'] = functools.partial(
      jaxmix.pool_label_map, *maps[:3], num_classes=K, official_box_order=order
    )
  cases['region_crop_boxes'] = lambda: jaxmix.region_crop_boxes(
    jaxmix.Box(1, 2, 5, 7), maps[2], maps[3], height=H, width=W
  )
  cases['localized_cutmix_targets'] = lambda: jaxmix.localized_cutmix_targets(
    *maps,
    box=jaxmix.Box(jnp.array([0, 1, 2, 0]), 1, 6, jnp.array([4, 5, 8, 8])),
    partners=jnp.array([2, 3, 0, 1]),
    num_classes=K,
    height=H,
    width=W,
  )
  cases['token_boxes'] = lambda: tuple(
    jaxmix.token_boxes(height=H, width=W, grid=(2, 4))
  )
  cases['token_label_targets'] = lambda: jaxmix.token_label_targets(
    *maps, grid=(2, 2), height=H, width=W, num_classes=K
  )
  # --------------------------------------------------------- occlusions
  cutout_variants = {
    'default': {'size': 4},
    'count2_p05': {'size': 3, 'count': 2, 'prob': 0.5},
    'fill': {'size': 5, 'fill_value': 2.0},
  }
  erasing_variants = {
    'default': {},
    'p1_count3': {'prob': 1.0, 'max_count': 3},
    'random': {'prob': 1.0, 'fill': 'random'},
    'pixel': {'prob': 0.9, 'fill': 'pixel', 'max_count': 2},
    'aspect': {'prob': 1.0, 'area': (0.1, 0.5), 'aspect': (0.5, 2.0)},
  }
  for name, op, variants in (
    ('cutout', jaxmix.cutout, cutout_variants),
    ('random_erasing', jaxmix.random_erasing, erasing_variants),
  ):
    for (tag, knobs), dtype, seed in itertools.product(
      variants.items(), ALL_DTYPES, SEEDS
    ):
      if dtype == 'uint8' and knobs.get('fill', 'zero') != 'zero':
        continue

      def case(op=op, knobs=knobs, dtype=dtype, seed=seed):
        return _occlude(op, jax.random.key(seed), _images(dtype), **knobs)

      cases[f'{name}/{tag}/{dtype}/{seed}'] = case
  # ----------------------------------------------------------- samplers
  for seed in SEEDS:
    key = jax.random.key(seed)
    size = {'batch_size': B, 'height': H, 'width': W}
    for tag, knobs in {
      'default': {},
      'elem_p05': {'per_example': True, 'prob': 0.5, 'alpha': 0.4},
    }.items():
      cases[f'draw_mixup/{tag}/{seed}'] = functools.partial(
        _draw_case, 'draw_mixup', key, batch_size=B, **knobs
      )
    for tag, knobs in {
      'default': {},
      'elem_p05': {'per_example': True, 'prob': 0.5},
      'uncorrected': {'correct_lam': False, 'alpha': 0.3},
      'minmax': {'minmax': (0.2, 0.8)},
    }.items():
      cases[f'draw_cutmix/{tag}/{seed}'] = functools.partial(
        _draw_case, 'draw_cutmix', key, **size, **knobs
      )
      cases[f'sample_cutmix_tuple/{tag}/{seed}'] = functools.partial(
        _tuple_cutmix, key, **size, **knobs
      )
    for tag, knobs in {
      'default': {'mixup_alpha': 0.8, 'cutmix_alpha': 1.0},
      'pairs': {'mixup_alpha': 0.8, 'cutmix_alpha': 1.0, 'pairs': True},
      'elem_minmax': {
        'mixup_alpha': 0.8,
        'cutmix_alpha': 0.0,
        'minmax': (0.2, 0.8),
        'per_example': True,
      },
    }.items():
      cases[f'draw_mixup_or_cutmix/{tag}/{seed}'] = functools.partial(
        _draw_case, 'draw_mixup_or_cutmix', key, **size, **knobs
      )
    for mode in ('spatial', 'temporal', 'cuboid'):
      cases[f'sample_videomix/{mode}/{seed}'] = functools.partial(
        _draw_case,
        'sample_videomix',
        key,
        **size,
        num_frames=T,
        mode=mode,
        per_example=True,
      )
    cases[f'sample_saliency_cutmix/{seed}'] = functools.partial(
      _draw_case,
      'sample_saliency_cutmix',
      key,
      jnp.asarray(X['saliency']),
      height=H,
      width=W,
      prob=0.7,
    )
    cases[f'sample_mix_weight/{seed}'] = functools.partial(
      jaxmix.sample_mix_weight, key, alpha=0.4, shape=(6,)
    )
    cases[f'sample_partners/{seed}'] = functools.partial(
      jaxmix.sample_partners, key, batch_size=9
    )
    cases[f'sample_cutmix_box/{seed}'] = lambda key=key: tuple(
      jaxmix.sample_cutmix_box(
        key, height=H, width=10, weight=jnp.array([0.1, 0.5, 0.9])
      )
    )
    cases[f'sample_cutmix_box_minmax/{seed}'] = lambda key=key: tuple(
      jaxmix.sample_cutmix_box_minmax(
        key, height=H, width=10, minmax=(0.2, 0.8), shape=(5,)
      )
    )
    cases[f'sample_minority_indices/{seed}'] = functools.partial(
      jaxmix.sample_minority_indices,
      key,
      jnp.array([0.1, 0.2, 0.3, 0.4]),
      num_samples=7,
    )
  cases['salient_peaks'] = functools.partial(
    jaxmix.salient_peaks, jnp.asarray(X['saliency']), height=H, width=W
  )
  # ----------------------------------------------------------- appliers
  partners = jnp.array([2, 0, 3, 1])
  box = jaxmix.Box(jnp.array([0, 2, 1, 0]), 1, jnp.array([5, 6, 8, 0]), 7)
  for dtype, form in itertools.product(FLOATS, ('dense', 'dense_bf16')):
    labels, _ = _labels(form)
    cases[f'mixup_with_weight/{dtype}/{form}'] = functools.partial(
      _quiet,
      jaxmix.mixup_with_weight,
      _images(dtype),
      labels,
      weight=jnp.array([0.3, 1.0, 0.6, 0.9]),
      partners=partners,
    )
  for dtype, weight in itertools.product(ALL_DTYPES, (None, 0.7)):
    cases[f'cutmix_with_box/{dtype}/{weight}'] = functools.partial(
      _quiet,
      jaxmix.cutmix_with_box,
      _images(dtype),
      jnp.asarray(X['dense']),
      box=box,
      partners=partners,
      weight=weight,
    )
  draw = jaxmix.make_draw(
    weight=jnp.array([0.3, 1.0, 0.6, 0.9]),
    partners=partners,
    blend=jnp.array([1.0, 0.5, 1.0, 0.25]),
    box=box,
    height=H,
    width=W,
  )
  for dtype in ALL_DTYPES:
    cases[f'apply_draw/image/{dtype}'] = functools.partial(
      jaxmix.apply_draw, _images(dtype), draw, roles='image'
    )
    cases[f'apply_draw/mask/{dtype}'] = functools.partial(
      jaxmix.apply_draw, _images(dtype), draw, roles='mask'
    )
  cases['apply_draw/tree'] = functools.partial(
    jaxmix.apply_draw,
    {
      'image': jnp.asarray(X['images'])[:, ::2, ::2],
      'label': jnp.asarray(X['dense']),
      'tokens': jnp.asarray(X['token_ints']),
      'ids': jnp.arange(B),
    },
    draw,
    roles={
      'image': 'image',
      'label': 'target',
      'tokens': 'mask',
      'ids': 'keep',
    },
  )
  video_draw = _draw(
    'sample_videomix',
    jax.random.key(3),
    batch_size=B,
    num_frames=T,
    height=H,
    width=W,
    per_example=True,
  )
  cases['apply_draw/video'] = functools.partial(
    jaxmix.apply_draw,
    (jnp.asarray(X['video']), jnp.asarray(X['video'])[:, :, ::2, ::4]),
    video_draw,
    roles='image',
  )
  cases['draw_mask'] = functools.partial(
    jaxmix.draw_mask, draw, height=3, width=5
  )
  # -------------------------------------------------------------- labels
  logits = jnp.asarray(X['logits'])
  ints = jnp.asarray(X['ints'])
  cases['one_hot'] = functools.partial(jaxmix.one_hot, ints, K, smoothing=0.1)
  cases['smooth_labels'] = functools.partial(
    jaxmix.smooth_labels, jnp.asarray(X['dense']), 0.2
  )
  cases['soft_cross_entropy'] = functools.partial(
    jaxmix.soft_cross_entropy, logits, jnp.asarray(X['dense'])
  )
  for smoothing in (0.0, 0.1):
    cases[f'mixed_cross_entropy/{smoothing}'] = functools.partial(
      jaxmix.mixed_cross_entropy, logits, ints, draw, smoothing=smoothing
    )
    cases[f'two_target_cross_entropy/{smoothing}'] = functools.partial(
      jaxmix.two_target_cross_entropy,
      logits,
      ints,
      ints[partners],
      jnp.array([0.3, 1.0, 0.6, 0.9]),
      smoothing=smoothing,
    )
  cases['token_labeling_loss'] = functools.partial(
    jaxmix.token_labeling_loss,
    logits,
    jnp.asarray(X['token_logits']),
    jnp.asarray(X['dense']),
    jnp.asarray(X['token_soft']),
  )
  # ----------------------------------------------------------- per_shard
  mesh = jax.make_mesh((8,), ('data',))
  big = jnp.tile(jnp.asarray(X['images']), (4, 1, 1, 1))
  big_labels = jnp.tile(jnp.asarray(X['dense']), (4, 1))
  for name in ('cutmix', 'mixup'):
    cases[f'per_shard/{name}'] = functools.partial(
      jaxmix.per_shard(getattr(jaxmix, name), mesh),
      jax.random.key(5),
      big,
      big_labels,
    )
  return cases


def _occlude(op, key, images, **knobs):
  """The occlusion's images (its old form with labels returned them too)."""
  try:
    return op(key, images, **knobs)
  except TypeError:  # The call with labels, before images-only.
    return op(key, images, jnp.asarray(X['dense']), **knobs)[0]


def _draw(name, *args, **kwargs):
  """A draw from the sampler `jaxmix.<name>` (old names warn: quiet)."""
  return _quiet(getattr(jaxmix, name), *args, **kwargs)


def _draw_case(name, *args, **kwargs):
  return _draw_fields(_draw(name, *args, **kwargs))


def digest(tree) -> str:
  """SHA-256 of every leaf's dtype, shape and bytes, in tree order."""
  sha = hashlib.sha256()
  leaves, treedef = jax.tree_util.tree_flatten(
    tree, is_leaf=lambda x: x is None
  )
  sha.update(str(treedef).encode())
  for leaf in leaves:
    if leaf is None:
      sha.update(b'None')
      continue
    array = np.asarray(leaf)
    sha.update(f'{array.dtype}{array.shape}'.encode())
    sha.update(np.ascontiguousarray(array).tobytes())
  return sha.hexdigest()[:24]


def compute() -> dict[str, str]:
  return {name: digest(case()) for name, case in sorted(_cases().items())}


def test_every_output_is_bit_identical_to_the_recorded_one():
  recorded = json.loads(GOLDEN.read_text())
  computed = compute()
  assert sorted(computed) == sorted(recorded), (
    'the cases changed: '
    f'new {sorted(set(computed) - set(recorded))[:5]}, '
    f'gone {sorted(set(recorded) - set(computed))[:5]}'
  )
  changed = [name for name in recorded if recorded[name] != computed[name]]
  assert not changed, f'{len(changed)} outputs changed, e.g. {changed[:10]}'


@pytest.mark.parametrize('dtype', ALL_DTYPES)
def test_the_grid_covers_every_image_dtype(dtype):
  names = json.loads(GOLDEN.read_text())
  for op in ('cutmix', 'videomix', 'saliency_cutmix', 'cmo', 'cutout'):
    assert any(n.startswith(op) and f'/{dtype}/' in n for n in names), op


if __name__ == '__main__':
  if '--write' not in sys.argv:
    sys.exit('pass --write to record the golden outputs')
  values = compute()
  GOLDEN.write_text(json.dumps(values, indent=0, sort_keys=True) + '\n')
  print(f'{len(values)} cases written to {GOLDEN}')
