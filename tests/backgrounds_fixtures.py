"""A tiny fake Backgrounds Challenge release and a run that reads it.

`write_release` writes `backgrounds_challenge_data.tar.gz` in the official
layout (`bg_challenge/<variant>/val/<class folder>/<file>`, masks as `.npy`
in `fg_mask`). Images are solid colours that encode a planted ImageNet
prediction (`eval_builder_fixtures.class_colour`); `SwitchRun` reads the
colour at the centre (the foreground) and in a corner (the background) and
predicts by `SWITCH`, in JAX, so that it also runs on global arrays of
several processes. Every accuracy, the BG-Gap and the challenge accuracy
follow by hand (`TOP1`, `FOOLED`).
"""

import dataclasses
import io
import os

import eval_builder_fixtures as fx
import jax
import jax.numpy as jnp
import numpy as np

from jaxmix.datasets import backgrounds_challenge as bgc

SIDE = 40  # released images are 224; the run reads 32 (resized)
# ImageNet classes of each IN-9 class, for planted predictions.
FIRST = [int(np.flatnonzero(bgc.IMAGENET_TO_IN9 == c)[0]) for c in range(9)]
UNMAPPED = 500


def right(c):
  return FIRST[c]


def wrong(c):  # another IN-9 class
  return FIRST[(c + 1) % 9]


def unmapped(c):  # no IN-9 class: always wrong
  return UNMAPPED + c


# Per variant, the planted prediction of each class's image(s), and the
# expected top-1.
PLANTED = {
  'original': (
    [right] * 9,
    [right] * 5 + [wrong] * 2 + [unmapped] * 2,
  ),
  'only_bg_b': ([right] + [wrong] * 8,),
  'only_bg_t': ([right, wrong, right, wrong, wrong, wrong] + [unmapped] * 3,),
  'no_fg': ([right] * 3 + [unmapped] * 6,),
  'only_fg': ([right] * 8 + [wrong],),
  'mixed_same': ([right] * 7 + [wrong] * 2,),
  'mixed_rand': ([right] * 4 + [unmapped] * 5,),
  'mixed_next': ([wrong] * 9,),
}
TOP1 = {
  'original': 14 / 18,
  'only_bg_b': 1 / 9,
  'only_bg_t': 2 / 9,
  'no_fg': 3 / 9,
  'only_fg': 8 / 9,
  'mixed_same': 7 / 9,
  'mixed_rand': 4 / 9,
  'mixed_next': 0.0,
}
# SwitchRun: a foreground of IN-9 class c on a background of ImageNet
# colour q is predicted q when q is in SWITCH[c], else its own colour.
SWITCH = {
  0: {wrong(3)},  # only_bg_t image 3 (class 4): fooled at background 3
  2: {right(2)},  # switches to a class-2 colour: still right
  5: {999},  # no such background
  7: {unmapped(8)},  # the last background: fooled there
}
FOOLED = {0, 7}


def file_name(c, k):
  return f'n{c:08d}_{k}.JPEG'


def fg_mask():
  mask = np.zeros((SIDE, SIDE), np.uint8)
  mask[10:30, 10:30] = 1  # the centre is foreground, the corners not
  return mask


def release_files():
  files = {}
  for variant, images in PLANTED.items():
    for k, planted in enumerate(images):
      for c, fn in enumerate(planted):
        path = (
          f'bg_challenge/{variant}/val/{bgc.CLASS_FOLDERS[c]}/{file_name(c, k)}'
        )
        files[path] = fx.solid_jpeg(fn(c), SIDE, SIDE)
  for c in range(9):  # masks of the first original image of every class
    buffer = io.BytesIO()
    np.save(buffer, fg_mask())
    name = file_name(c, 0).replace('.JPEG', '.npy')
    files[f'bg_challenge/fg_mask/val/{bgc.CLASS_FOLDERS[c]}/{name}'] = (
      buffer.getvalue()
    )
  return files


def write_release(manual_dir: str) -> str:
  """The fake archive in `manual_dir`; returns its path."""
  return fx.write_tar(os.path.join(manual_dir, bgc.ARCHIVE), release_files())


def prepare_all(manual_dir: str, data_dir: str) -> None:
  """Builds every config with jaxmix's builder (TFDS extracts the tar)."""
  for config in (*bgc.VARIANTS, bgc.MASKS):
    fx.prepare(f'{bgc.NAME}/{config}', data_dir, manual_dir=manual_dir)


def _switch_table() -> np.ndarray:
  """bool `[1000, 1000]`: [fg colour, bg colour] -> predict the bg's."""
  table = np.zeros((1000, 1000), bool)
  for fg in range(1000):
    for bg in SWITCH.get(int(bgc.IMAGENET_TO_IN9[fg]), ()):
      table[fg, bg] = True
  return table


def _decode(pixels: jax.Array) -> jax.Array:
  """Classes `[B]` of the mean colour of uint8 `[B, h, w, 3]`."""
  mean = pixels.astype(jnp.float32).mean(axis=(1, 2))
  digits = jnp.clip(jnp.rint((mean - 12) / 25), 0, 9).astype(jnp.int32)
  return digits @ jnp.array([100, 10, 1], jnp.int32)


@jax.jit
def _switch_logits(images: jax.Array, table: jax.Array) -> jax.Array:
  c = images.shape[1] // 2
  centre = _decode(images[:, c - 2 : c + 2, c - 2 : c + 2])
  corner = _decode(images[:, :4, :4])
  pred = jnp.where(table[centre, corner], corner, centre)
  # fx.planted_logits: 5 at pred, then 4, 3, 2, 1 at the next classes.
  return sum(
    (5.0 - j) * jax.nn.one_hot((pred + j) % 1000, 1000) for j in range(5)
  )


class SwitchRun(fx.PlantedRun):
  """Predicts the centre's colour, or the corner's where `SWITCH` says."""

  def logits_fn(self, images) -> jax.Array:
    return _switch_logits(jnp.asarray(images), jnp.asarray(_switch_table()))


def switch_run(workdir: str, mesh=None) -> SwitchRun:
  """A 1000-class `SwitchRun` reading 32 px images (on `mesh`)."""
  planted = fx.planted_run(workdir)
  fields = {
    f.name: getattr(planted, f.name) for f in dataclasses.fields(planted)
  }
  if mesh is not None:
    fields['mesh'] = mesh
  return SwitchRun(**fields)
