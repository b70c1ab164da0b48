"""The shared knobs: one definition, written into each signature by `takes`."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix
from jaxmix._src import knobs

KEY = jax.random.key(0)
KW = inspect.Parameter.KEYWORD_ONLY

# Every parameter of the samplers and ops whose shared knobs `takes` writes,
# with its default ('-' for none), as they were written out before.
SIGNATURES = {
  'sample_mixup': 'key batch_size alpha=0.2 prob=1.0 per_example=False '
  'axis_name=None',
  'sample_cutmix': 'key batch_size height width alpha=1.0 prob=1.0 '
  'per_example=False correct_lam=True minmax=None axis_name=None',
  'sample_cmo': 'key batch_size height width alpha=1.0 prob=0.5 '
  'per_example=False axis_name=None',
  'sample_saliency_cutmix': 'key saliency height width alpha=1.0 prob=1.0 '
  'per_example=False axis_name=None',
  'sample_videomix': 'key batch_size num_frames height width alpha=1.0 '
  'prob=1.0 mode=cuboid per_example=False axis_name=None',
  'sample_mixup_or_cutmix': 'key batch_size height width mixup_alpha '
  'cutmix_alpha switch_prob=0.5 prob=1.0 per_example=False pairs=False '
  'correct_lam=True minmax=None axis_name=None',
  'mixup': 'key images labels alpha=0.2 prob=1.0 per_example=False '
  'num_classes=None smoothing=0.0 axis_name=None',
  'cutmix': 'key images labels alpha=1.0 prob=1.0 per_example=False '
  'correct_lam=True minmax=None num_classes=None smoothing=0.0 axis_name=None',
  'mixup_or_cutmix': 'key images labels mixup_alpha cutmix_alpha '
  'switch_prob=0.5 prob=1.0 per_example=False pairs=False correct_lam=True '
  'minmax=None num_classes=None smoothing=0.0 axis_name=None',
  'videomix': 'key videos labels alpha=1.0 prob=1.0 mode=cuboid '
  'per_example=False num_classes=None smoothing=0.0 axis_name=None',
  'saliency_cutmix': 'key images labels saliency alpha=1.0 prob=1.0 '
  'per_example=False num_classes=None smoothing=0.0 axis_name=None',
  'cmo': 'key images labels minority_images minority_labels alpha=1.0 '
  'prob=0.5 per_example=False axis_name=None',
  'mixtoken': 'key tokens labels token_labels alpha=1.0 prob=1.0 '
  'per_example=False axis_name=None',
  'relabel_cutmix': 'key images scores indices crop_boxes flips num_classes '
  'alpha=1.0 prob=1.0 per_example=False localized=False '
  'official_box_order=False temperature=1.0 axis_name=None',
  'relabel_targets': 'scores indices crop_boxes num_classes '
  'official_box_order=False temperature=1.0',
  'token_label_targets': 'scores indices crop_boxes flips grid height width '
  'num_classes official_box_order=False temperature=1.0',
}


def _written(name):
  params = inspect.signature(getattr(jaxmix, name)).parameters.values()
  return {
    p.name if p.default is p.empty else f'{p.name}={p.default}': p.kind
    for p in params
  }


@pytest.mark.parametrize('name', sorted(SIGNATURES))
def test_signatures_name_every_knob_with_its_default(name):
  written = _written(name)
  assert set(written) == set(SIGNATURES[name].split())
  for param, kind in written.items():
    if '=' in param:  # Every knob with a default is keyword-only.
      assert kind is KW, param


def test_shared_knobs_have_one_default_unless_a_function_says_otherwise():
  for name in SIGNATURES:
    for p in inspect.signature(getattr(jaxmix, name)).parameters.values():
      if p.name in knobs.SHARED and p.default is not p.empty:
        own = {('sample_mixup', 'alpha'), ('mixup', 'alpha')}
        own |= {('sample_cmo', 'prob'), ('cmo', 'prob')}
        if (name, p.name) not in own:
          assert p.default == knobs.SHARED[p.name][1], (name, p.name)


def test_a_call_is_bound_against_the_written_signature():
  x, y = jnp.ones((4, 8, 8, 3)), jnp.eye(4)
  with pytest.raises(TypeError, match="unexpected keyword argument 'alpah'"):
    jaxmix.cutmix(KEY, x, y, alpah=1.0)
  with pytest.raises(TypeError, match='positional'):
    jaxmix.cutmix(KEY, x, y, 1.0)
  with pytest.raises(TypeError, match="multiple values for argument 'key'"):
    jaxmix.sample_mixup(KEY, key=KEY, batch_size=4)


def test_knobs_reach_the_op_by_name_under_jit_static_argnames():
  x, y = jnp.arange(768.0).reshape(4, 8, 8, 3), jnp.eye(4)
  jitted = jax.jit(jaxmix.cutmix, static_argnames=('per_example', 'minmax'))
  got = jitted(KEY, x, y, alpha=0.5, per_example=True, minmax=(0.2, 0.8))
  want = jaxmix.cutmix(
    KEY, x, y, alpha=0.5, per_example=True, minmax=(0.2, 0.8)
  )
  jax.tree_util.tree_map(np.testing.assert_array_equal, got, want)
  # The op's defaults are its sampler's: the same draw, applied.
  draw = jaxmix.sample_mixup(KEY, batch_size=4)
  want = jaxmix.apply_draw((x, y), draw, roles=('image', 'target'))
  got = jaxmix.mixup(KEY, x, y)
  jax.tree_util.tree_map(np.testing.assert_array_equal, got, want)


def test_takes_refuses_an_unknown_knob_and_a_function_without_knobs():
  with pytest.raises(KeyError):
    knobs.takes('alpah')(lambda key, **kw: kw)
  with pytest.raises(TypeError, match='end it in'):
    knobs.takes('alpha')(lambda key, alpha=1.0: alpha)
