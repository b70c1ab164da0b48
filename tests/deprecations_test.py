"""The names jaxmix 0.2 replaced: each warns, naming its replacement, and
gives what the new call gives, bit for bit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix
from jaxmix.data import minority
from jaxmix.train import augment_schedule

KEY = jax.random.key(3)
SIZE = {'batch_size': 4, 'height': 8, 'width': 8}


def _equal(a, b):
  jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


@pytest.mark.parametrize(
  'old, new, knobs',
  [
    ('draw_mixup', 'sample_mixup', {'batch_size': 4, 'alpha': 0.4}),
    ('draw_cutmix', 'sample_cutmix', {**SIZE, 'per_example': True}),
    (
      'draw_mixup_or_cutmix',
      'sample_mixup_or_cutmix',
      {**SIZE, 'mixup_alpha': 0.8, 'cutmix_alpha': 1.0},
    ),
  ],
)
def test_old_sampler_names_warn_and_draw_what_the_new_ones_draw(
  old, new, knobs
):
  with pytest.warns(DeprecationWarning, match=f'jaxmix.{new}'):
    draw = getattr(jaxmix, old)(KEY, **knobs)
  _equal(draw, getattr(jaxmix, new)(KEY, **knobs))


def test_the_tuple_form_of_sample_cutmix_unpacks_with_a_warning():
  draw = jaxmix.sample_cutmix(KEY, **SIZE)
  with pytest.warns(DeprecationWarning, match='draw.box'):
    box, partners, weight = draw
  _equal((box, partners, weight), (draw.box, draw.partners, draw.weight))
  images, labels = jnp.arange(768.0).reshape(4, 8, 8, 3), jnp.eye(4)
  with pytest.warns(DeprecationWarning, match='jaxmix.apply_draw'):
    old = jaxmix.cutmix_with_box(
      images, labels, box=box, partners=partners, weight=weight
    )
  _equal(old, jaxmix.cutmix(KEY, images, labels))


def test_mixup_with_weight_warns_and_equals_apply_draw():
  images, labels = jnp.arange(96.0).reshape(4, 2, 4, 3), jnp.eye(4)
  draw = jaxmix.sample_mixup(KEY, batch_size=4, alpha=1.0)
  with pytest.warns(DeprecationWarning, match='jaxmix.apply_draw'):
    old = jaxmix.mixup_with_weight(
      images, labels, weight=draw.weight, partners=draw.partners
    )
  _equal(old, jaxmix.mixup(KEY, images, labels, alpha=1.0))
  with (
    pytest.raises(TypeError, match='for mixup_with_weight, which blends'),
    pytest.warns(DeprecationWarning),
  ):
    jaxmix.mixup_with_weight(
      images.astype(jnp.uint8), labels, weight=0.5, partners=jnp.arange(4)
    )


@pytest.mark.parametrize('op', ['cutout', 'random_erasing'])
def test_occlusions_called_with_labels_warn_and_return_them(op):
  images = jnp.arange(384.0).reshape(2, 8, 8, 3)
  labels = jnp.eye(2)
  knobs = {'size': 4} if op == 'cutout' else {'prob': 1.0}
  with pytest.warns(DeprecationWarning, match=f'jaxmix.{op}\\(key, images'):
    old_images, old_labels = getattr(jaxmix, op)(KEY, images, labels, **knobs)
  _equal(old_images, getattr(jaxmix, op)(KEY, images, **knobs))
  assert old_labels is labels
  with pytest.raises(TypeError, match='positional arguments'):
    getattr(jaxmix, op)(KEY, images, labels, labels, **knobs)


@pytest.mark.parametrize(
  'old, home, args, knobs',
  [
    ('cmo_active', augment_schedule, (5,), {'num_epochs': 9}),
    (
      'minority_example_weights',
      minority,
      ([0, 0, 0, 1, 2],),
      {'num_classes': 4, 'alpha': 0.5},
    ),
  ],
)
def test_helpers_that_moved_up_warn_and_equal_their_new_home(
  old, home, args, knobs
):
  assert old not in jaxmix.__all__
  with pytest.warns(DeprecationWarning, match=f'{home.__name__}.{old}'):
    got = getattr(jaxmix, old)(*args, **knobs)
  _equal(got, getattr(home, old)(*args, **knobs))
