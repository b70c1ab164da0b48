"""One conformance suite for every random op of jaxmix and its sampler.

Every op below is run through the same laws: the op equals its sampler +
`jaxmix.apply_draw` + its target rule bit for bit; jit == eager; vmap ==
loop; inside `jax.pmap` and `jaxmix.per_shard` it equals the op on each
device's shard (and with `axis_name=` each device draws its own); label rows
sum to one, with at most two classes where that is the op's law; `prob=0` is
the identity; the same key gives the same output and another key another
one; changing a traced knob does not retrace; a traced `alpha <= 0` means no
mixing, never NaN; the image dtype (float32, bfloat16, float16, and uint8
where the op only selects) is kept.
"""

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix

NUM_DEVICES = 8
H, W, C, K = 8, 8, 3, 10
FLOATS = (jnp.float32, jnp.bfloat16, jnp.float16)
ALL = (*FLOATS, jnp.uint8)


def _images(rng, batch, dtype, shape=(H, W, C)):
  if dtype == jnp.uint8:
    return jnp.asarray(rng.integers(0, 256, (batch, *shape)), jnp.uint8)
  return jnp.asarray(rng.normal(size=(batch, *shape)), dtype)


def _one_hot(rng, batch):
  return jax.nn.one_hot(rng.integers(0, K, batch), K)


def _maps(rng, batch):
  scores = jnp.asarray(rng.normal(size=(batch, 3, 3, 2)) * 3, jnp.float32)
  indices = jnp.asarray(rng.integers(0, K, (batch, 3, 3, 2)), jnp.int32)
  crops = jnp.tile(jnp.array([[0.1, 0.0, 0.9, 0.8]]), (batch, 1))
  flips = jnp.asarray(rng.integers(0, 2, batch), bool)
  return scores, indices, crops, flips


@dataclasses.dataclass(frozen=True)
class Case:
  """An op, the arrays it takes and its sampler + applier + target rule.

  `op(key, *arrays, **knobs)` and `composed(key, *arrays, **knobs)` return
  a tuple of batched outputs; `labels` indexes the output whose rows are
  distributions (None: no labels out).
  """

  op: Callable
  composed: Callable | None
  arrays: Callable  # (rng, batch, dtype) -> tuple of batched arrays
  labels: int | None = 1
  two_classes: bool = True
  dtypes: tuple = FLOATS
  alphas: tuple = ('alpha',)


def _mix(op, sampler, roles, **fixed):
  """The op and its composition from `sampler` and `apply_draw`."""

  def run(key, images, labels, **knobs):
    return op(key, images, labels, **{**fixed, **knobs})  # knobs override

  def composed(key, images, labels, axis_name=None, **knobs):
    b, h, w = images.shape[:3]
    size = {} if sampler is jaxmix.sample_mixup else {'height': h, 'width': w}
    draw = sampler(
      key, batch_size=b, **size, **{**fixed, **knobs}, axis_name=axis_name
    )
    return jaxmix.apply_draw((images, labels), draw, roles=roles)

  return run, composed


def _image_case(op, sampler, roles, dtypes=FLOATS, alphas=('alpha',), **kw):
  run, composed = _mix(op, sampler, roles, **kw)
  return Case(
    run,
    composed,
    lambda rng, b, dtype: (_images(rng, b, dtype), _one_hot(rng, b)),
    dtypes=dtypes,
    alphas=alphas,
  )


def _videomix(key, videos, labels, **knobs):
  return jaxmix.videomix(key, videos, labels, mode='cuboid', **knobs)


def _videomix_composed(key, videos, labels, axis_name=None, **knobs):
  b, t, h, w = videos.shape[:4]
  draw = jaxmix.sample_videomix(
    key,
    batch_size=b,
    num_frames=t,
    height=h,
    width=w,
    mode='cuboid',
    axis_name=axis_name,
    **knobs,
  )
  return jaxmix.apply_draw((videos, labels), draw, roles=('mask', 'target'))


def _saliency(key, images, labels, saliency, **knobs):
  return jaxmix.saliency_cutmix(key, images, labels, saliency=saliency, **knobs)


def _saliency_composed(key, images, labels, saliency, axis_name=None, **kw):
  draw = jaxmix.sample_saliency_cutmix(
    key, saliency, height=H, width=W, axis_name=axis_name, **kw
  )
  return jaxmix.apply_draw((images, labels), draw, roles=('mask', 'target'))


def _cmo_composed(
  key, images, labels, m_images, m_labels, axis_name=None, **kw
):
  draw = jaxmix.sample_cmo(
    key,
    batch_size=images.shape[0],
    height=H,
    width=W,
    axis_name=axis_name,
    **kw,
  )
  return jaxmix.apply_draw(
    (images, labels),
    draw,
    roles=('mask', 'target'),
    partner_tree=(m_images, m_labels),
  )


def _mixtoken_composed(key, tokens, labels, token_labels, axis_name=None, **kw):
  b, h, w = tokens.shape[:3]
  draw = jaxmix.sample_mixtoken(
    key, batch_size=b, height=h, width=w, axis_name=axis_name, **kw
  )
  return jaxmix.apply_draw(
    (tokens, labels, token_labels), draw, roles=('mask', 'target', 'mask')
  )


def _relabel(localized):
  def run(key, images, *maps, **knobs):
    return jaxmix.relabel_cutmix(
      key, images, *maps, num_classes=K, localized=localized, **knobs
    )

  def composed(key, images, *maps, axis_name=None, **knobs):
    b, h, w = images.shape[:3]
    draw = jaxmix.sample_relabel_cutmix(
      key, batch_size=b, height=h, width=w, axis_name=axis_name, **knobs
    )
    mixed = jaxmix.apply_draw(images, draw, roles='mask')
    if localized:
      targets = jaxmix.localized_cutmix_targets(
        *maps,
        box=draw.box,
        partners=draw.partners,
        num_classes=K,
        height=h,
        width=w,
      )
    else:
      own = jaxmix.relabel_targets(*maps[:3], num_classes=K)
      targets = jaxmix.apply_draw(own, draw, roles='target')
    return mixed, targets

  return Case(
    run,
    composed,
    lambda rng, b, dtype: (_images(rng, b, dtype), *_maps(rng, b)),
    two_classes=False,
  )


def _occlusion(op, **fixed):
  return Case(
    lambda key, images, **knobs: (op(key, images, **fixed, **knobs),),
    None,
    lambda rng, b, dtype: (_images(rng, b, dtype),),
    labels=None,
    dtypes=ALL if fixed.get('fill', 'zero') == 'zero' else FLOATS,
    alphas=(),
  )


MOC = {'mixup_alpha': 0.8, 'cutmix_alpha': 1.0}
CASES = {
  'mixup': _image_case(
    jaxmix.mixup, jaxmix.sample_mixup, ('image', 'target'), alpha=0.4
  ),
  'mixup_elem': _image_case(
    jaxmix.mixup,
    jaxmix.sample_mixup,
    ('image', 'target'),
    per_example=True,
  ),
  'cutmix': _image_case(
    jaxmix.cutmix, jaxmix.sample_cutmix, ('mask', 'target'), dtypes=ALL
  ),
  'cutmix_elem_uncorrected': _image_case(
    jaxmix.cutmix,
    jaxmix.sample_cutmix,
    ('mask', 'target'),
    dtypes=ALL,
    per_example=True,
    correct_lam=False,
  ),
  'cutmix_minmax': _image_case(
    jaxmix.cutmix,
    jaxmix.sample_cutmix,
    ('mask', 'target'),
    dtypes=ALL,
    minmax=(0.2, 0.8),
    alphas=(),
  ),
  'mixup_or_cutmix': _image_case(
    jaxmix.mixup_or_cutmix,
    jaxmix.sample_mixup_or_cutmix,
    ('image', 'target'),
    alphas=('mixup_alpha', 'cutmix_alpha'),
    **MOC,
  ),
  'mixup_or_cutmix_pairs': _image_case(
    jaxmix.mixup_or_cutmix,
    jaxmix.sample_mixup_or_cutmix,
    ('image', 'target'),
    alphas=('mixup_alpha', 'cutmix_alpha'),
    pairs=True,
    **MOC,
  ),
  'mixup_or_cutmix_cut_only': _image_case(
    jaxmix.mixup_or_cutmix,
    jaxmix.sample_mixup_or_cutmix,
    ('mask', 'target'),
    dtypes=ALL,
    alphas=('cutmix_alpha',),
    mixup_alpha=0,
    cutmix_alpha=1.0,
    per_example=True,
  ),
  'videomix': Case(
    _videomix,
    _videomix_composed,
    lambda rng, b, dtype: (
      _images(rng, b, dtype, (4, H, W, C)),
      _one_hot(rng, b),
    ),
    dtypes=ALL,
  ),
  'saliency_cutmix': Case(
    _saliency,
    _saliency_composed,
    lambda rng, b, dtype: (
      _images(rng, b, dtype),
      _one_hot(rng, b),
      jnp.asarray(rng.random((b, 4, 4)), jnp.float32),
    ),
    dtypes=ALL,
  ),
  'cmo': Case(
    lambda key, *arrays, **kw: jaxmix.cmo(key, *arrays, **kw),
    _cmo_composed,
    lambda rng, b, dtype: (
      _images(rng, b, dtype),
      _one_hot(rng, b),
      _images(rng, b, dtype),
      _one_hot(rng, b),
    ),
    dtypes=ALL,
  ),
  'mixtoken': Case(
    lambda key, *arrays, **kw: jaxmix.mixtoken(key, *arrays, **kw),
    _mixtoken_composed,
    lambda rng, b, dtype: (
      _images(rng, b, dtype, (4, 4, 6)),
      _one_hot(rng, b),
      jnp.asarray(rng.integers(0, K, (b, 4, 4)), jnp.int32),
    ),
  ),
  'relabel_cutmix': _relabel(localized=False),
  'relabel_cutmix_localized': _relabel(localized=True),
  'cutout': _occlusion(jaxmix.cutout, size=4, count=2),
  'random_erasing': _occlusion(jaxmix.random_erasing, max_count=2),
  'random_erasing_pixel': _occlusion(jaxmix.random_erasing, fill='pixel'),
}
MIXING = [name for name, case in CASES.items() if case.composed is not None]
# One case per op for the laws that hold alike for every variant of an op
# (the variants' bits are pinned by tests/ops_golden_test.py and by the
# sampler + applier law below).
EACH_OP = (
  'mixup',
  'cutmix',
  'mixup_or_cutmix_pairs',
  'videomix',
  'saliency_cutmix',
  'cmo',
  'mixtoken',
  'relabel_cutmix_localized',
  'cutout',
  'random_erasing',
)
KEY = jax.random.key(0)


@functools.cache
def _jitted(name):
  """The case's op, jitted once for the whole suite."""
  return jax.jit(CASES[name].op)


def _batch(name, batch=8, dtype=jnp.float32, seed=0):
  return CASES[name].arrays(np.random.default_rng(seed), batch, dtype)


def _equal(a, b):
  jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def _close(a, b):
  jax.tree_util.tree_map(
    lambda x, y: np.testing.assert_allclose(
      np.asarray(x, np.float32), np.asarray(y, np.float32), rtol=1e-6, atol=1e-6
    ),
    a,
    b,
  )


@functools.cache
def _each_dtype(name, composed=False):
  """The case's op (or composition) on a batch of each dtype, jitted once.

  A dtype changes only the apply, not the draw (the sampler sees shapes and
  the key alone), so one program holds the draw once and every dtype's
  apply: one compile for the op and one for the composition, instead of two
  per dtype. Called as `(key, _dtype_batches(name))`.
  """
  fn = CASES[name].composed if composed else CASES[name].op
  return jax.jit(lambda key, batches: tuple(fn(key, *b) for b in batches))


def _dtype_batches(name):
  return tuple(_batch(name, dtype=dtype) for dtype in CASES[name].dtypes)


@pytest.mark.parametrize('name', MIXING)
def test_the_op_is_its_sampler_applied_bit_for_bit(name):
  case = CASES[name]
  batches = _dtype_batches(name)
  for seed in (0, 1):
    key = jax.random.key(seed)
    _equal(
      _each_dtype(name)(key, batches), _each_dtype(name, True)(key, batches)
    )
  # And eagerly, step by step.
  _equal(case.op(KEY, *batches[0]), case.composed(KEY, *batches[0]))


@pytest.mark.parametrize('name', list(CASES))
def test_dtypes_and_shapes_are_kept(name):
  case = CASES[name]
  for dtype in case.dtypes:
    arrays = _batch(name, dtype=dtype)
    out = case.op(KEY, *arrays)
    assert out[0].dtype == dtype and out[0].shape == arrays[0].shape
    if case.labels is not None and not name.startswith('relabel'):
      assert out[case.labels].dtype == arrays[1].dtype
      assert out[case.labels].shape == arrays[1].shape


@pytest.mark.parametrize('name', EACH_OP)
def test_jit_equals_eager(name):
  arrays = _batch(name)
  op = CASES[name].op
  _close(op(KEY, *arrays), jax.jit(op)(KEY, *arrays))


@pytest.mark.parametrize('name', EACH_OP)
def test_vmap_over_batches_equals_loop(name):
  op = _jitted(name)
  # Groups of two: the looped op is the per-device program of the pmap and
  # per_shard laws below (one compile for the three).
  arrays = _batch(name, batch=6)
  groups = [a.reshape(3, 2, *a.shape[1:]) for a in arrays]
  keys = jax.random.split(KEY, 3)
  mapped = jax.vmap(op)(keys, *groups)
  for g in range(3):
    looped = op(keys[g], *(a[g] for a in groups))
    _close(jax.tree_util.tree_map(lambda x, g=g: x[g], mapped), looped)


def _slices(arrays, device, per_device):
  return tuple(
    a[device * per_device : (device + 1) * per_device] for a in arrays
  )


@pytest.mark.parametrize('name', EACH_OP)
def test_pmap_equals_the_op_per_device_and_axis_name_draws_per_device(name):
  op = CASES[name].op
  arrays = _batch(name, batch=2 * NUM_DEVICES)
  split = [a.reshape(NUM_DEVICES, 2, *a.shape[1:]) for a in arrays]
  keys = jnp.stack([KEY] * NUM_DEVICES)
  same = jax.pmap(op)(keys, *split)
  own = jax.pmap(functools.partial(op, axis_name='d'), axis_name='d')(
    keys, *split
  )
  for device in range(NUM_DEVICES):
    shard = _slices(arrays, device, 2)
    _close(
      jax.tree_util.tree_map(lambda x, d=device: x[d], same),
      _jitted(name)(KEY, *shard),
    )
    folded = jax.random.fold_in(KEY, device)
    _close(
      jax.tree_util.tree_map(lambda x, d=device: x[d], own),
      _jitted(name)(folded, *shard),
    )


SAMPLERS = {
  'sample_mixup': functools.partial(jaxmix.sample_mixup, batch_size=4),
  'sample_cutmix': functools.partial(
    jaxmix.sample_cutmix, batch_size=4, height=H, width=W
  ),
  'sample_mixup_or_cutmix': functools.partial(
    jaxmix.sample_mixup_or_cutmix, batch_size=4, height=H, width=W, **MOC
  ),
  'sample_videomix': functools.partial(
    jaxmix.sample_videomix, batch_size=4, num_frames=4, height=H, width=W
  ),
  'sample_saliency_cutmix': lambda key, **kw: jaxmix.sample_saliency_cutmix(
    key, jnp.arange(64.0).reshape(4, 4, 4), height=H, width=W, **kw
  ),
  'sample_cmo': functools.partial(
    jaxmix.sample_cmo, batch_size=4, height=H, width=W, prob=1.0
  ),
  'sample_mixtoken': functools.partial(
    jaxmix.sample_mixtoken, batch_size=4, height=4, width=4
  ),
  'sample_relabel_cutmix': functools.partial(
    jaxmix.sample_relabel_cutmix, batch_size=4, height=H, width=W
  ),
}


@pytest.mark.parametrize('name', list(SAMPLERS))
def test_samplers_draw_per_device_with_axis_name_and_alike_without(name):
  keys = jnp.stack([KEY] * NUM_DEVICES)
  alike = jax.pmap(SAMPLERS[name])(keys)
  own = jax.pmap(
    functools.partial(SAMPLERS[name], axis_name='d'), axis_name='d'
  )(keys)

  def fields(draw):
    return np.concatenate(
      [
        np.asarray(x, np.float32).reshape(NUM_DEVICES, -1)
        for x in (draw.weight, draw.partners, *draw.box)
      ],
      axis=1,
    )

  assert len({row.tobytes() for row in fields(alike)}) == 1
  assert len({row.tobytes() for row in fields(own)}) > NUM_DEVICES // 2
  single = SAMPLERS[name](jax.random.fold_in(KEY, 3))
  np.testing.assert_array_equal(own.partners[3], single.partners)
  np.testing.assert_allclose(own.weight[3], single.weight, rtol=1e-6)


@pytest.mark.parametrize('name', EACH_OP)
def test_per_shard_equals_the_op_on_each_shard_with_folded_keys(name):
  op = CASES[name].op
  mesh = jax.make_mesh((NUM_DEVICES,), ('data',))
  arrays = _batch(name, batch=2 * NUM_DEVICES)
  out = jaxmix.per_shard(op, mesh)(KEY, *arrays)
  out = jax.tree_util.tree_map(np.asarray, out)  # sliced on the host
  for device in range(NUM_DEVICES):
    shard = _slices(arrays, device, 2)
    expected = _jitted(name)(jax.random.fold_in(KEY, device), *shard)
    _close(_slices(out, device, 2), expected)


@pytest.mark.parametrize('name', [n for n in CASES if CASES[n].labels])
def test_label_rows_sum_to_one_with_at_most_two_classes_where_that_is_law(name):
  case = CASES[name]
  batches = _dtype_batches(name)
  for key in jax.random.split(KEY, 8):
    for out in _each_dtype(name)(key, batches):  # every image dtype
      labels = np.asarray(out[case.labels], np.float32)
      np.testing.assert_allclose(labels.sum(-1), 1.0, rtol=1e-5)
      assert (labels >= 0).all()
      if case.two_classes:
        assert ((labels > 0).sum(-1) <= 2).all()


@pytest.mark.parametrize('name', EACH_OP)
def test_prob_zero_is_the_identity(name):
  case = CASES[name]
  for dtype in case.dtypes:
    arrays = _batch(name, dtype=dtype)
    out = case.op(KEY, *arrays, prob=0.0)
    _equal(out[0], arrays[0])
    if name.startswith('relabel'):
      own = jaxmix.relabel_targets(*arrays[1:4], num_classes=K)
      np.testing.assert_allclose(out[1], own, rtol=1e-5, atol=1e-6)
    elif case.labels is not None:
      _equal(out[1], arrays[1])
    if name == 'mixtoken':
      _equal(out[2], arrays[2])


@pytest.mark.parametrize('name', EACH_OP)
def test_same_key_same_output_other_key_other_output(name):
  op, arrays = CASES[name].op, _batch(name)
  first = op(KEY, *arrays)
  _equal(first, op(KEY, *arrays))
  # Some ops may leave a batch as it was for one key (CMO pastes with
  # probability 0.5; a coarse token grid can draw an empty box): another
  # key among a few must change it.
  others = [op(jax.random.key(k), *arrays)[0] for k in (123, 7, 2024)]
  assert any(not np.array_equal(first[0], other) for other in others)


@pytest.mark.parametrize('name', EACH_OP)
def test_changing_traced_knobs_does_not_retrace(name):
  case = CASES[name]
  arrays = _batch(name)
  traces = []

  @jax.jit
  def step(key, prob, alpha):
    traces.append(None)
    knobs = {a: alpha for a in case.alphas}
    return case.op(key, *arrays, prob=prob, **knobs)

  for prob, alpha in ((1.0, 1.0), (0.3, 0.2), (0.0, 3.0)):
    step(KEY, prob, alpha)
  assert len(traces) == 1


@pytest.mark.parametrize('name', [n for n in EACH_OP if CASES[n].alphas])
def test_a_traced_alpha_of_zero_or_less_mixes_nothing_and_is_never_nan(name):
  case = CASES[name]
  arrays = _batch(name)
  unmixed = case.op(KEY, *arrays, prob=0.0)

  @jax.jit
  def run(alpha):
    return case.op(KEY, *arrays, **{a: alpha for a in case.alphas})

  for alpha in (0.0, -1.0, jnp.nan):
    out = run(alpha)
    _equal(out[0], unmixed[0])
    for leaf in jax.tree_util.tree_leaves(out):
      assert not np.isnan(np.asarray(leaf, np.float32)).any()


# ------------------------------------------------------------------ devices


@pytest.mark.parametrize('name', MIXING)
def test_a_batch_of_one_example_is_an_error_naming_the_size(name):
  if name == 'cmo':  # CMO pairs with the minority batch: one example mixes.
    out = CASES[name].op(KEY, *_batch(name, batch=1), prob=1.0)
    assert out[0].shape[0] == 1
    return
  with pytest.raises(ValueError, match=r'is 1: mixing pairs'):
    CASES[name].op(KEY, *_batch(name, batch=1))


def test_the_flax_imagenet_pmap_pattern_draws_per_device():
  """flax's examples/imagenet `train_step` under `jax.pmap(axis_name='batch')`
  with a replicated key: `axis_name='batch'` gives every device its own box
  and partners; without it every device draws the same."""
  images, _ = _batch('cutmix', batch=4 * NUM_DEVICES)
  classes = jnp.arange(4 * NUM_DEVICES) % 4  # distinct on each device
  labels = jax.nn.one_hot(classes, K)
  sharded = (
    images.reshape(NUM_DEVICES, 4, H, W, C),
    labels.reshape(NUM_DEVICES, 4, K),
  )
  rng = jnp.stack([jax.random.key(42)] * NUM_DEVICES)  # jax_utils.replicate
  steps = jnp.zeros(NUM_DEVICES, jnp.int32)

  def train_step(step, batch, rng, axis_name):
    key = jax.random.fold_in(rng, step)
    images, labels = jaxmix.cutmix(key, *batch, axis_name=axis_name)
    loss = jaxmix.soft_cross_entropy(
      images.mean((1, 2)) @ jnp.ones((C, K)), labels
    )
    return jax.lax.pmean(loss.mean(), 'batch'), labels

  for axis_name, distinct in ((None, 1), ('batch', NUM_DEVICES)):
    p_step = jax.pmap(
      functools.partial(train_step, axis_name=axis_name), axis_name='batch'
    )
    loss, mixed = p_step(steps, sharded, rng)
    assert np.isfinite(loss).all()
    # Each example's weight of its own class tells the device's draw.
    own = np.take_along_axis(
      np.asarray(mixed), np.asarray(classes).reshape(NUM_DEVICES, 4, 1), -1
    )
    weights = {row.tobytes() for row in own}
    assert (len(weights) > 1) == (distinct > 1)


def test_device_key_folds_the_axis_index_and_none_is_the_identity():
  keys = jnp.stack([KEY] * 4)
  folded = jax.vmap(lambda k: jaxmix.device_key(k, 'i'), axis_name='i')(keys)
  for i in range(4):
    np.testing.assert_array_equal(
      jax.random.key_data(folded[i]),
      jax.random.key_data(jax.random.fold_in(KEY, i)),
    )
  assert jaxmix.device_key(KEY, None) is KEY
