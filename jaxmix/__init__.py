"""jaxmix: CutMix, Mixup, Cutout and ReLabel for JAX.

Every mixing op is a pure function `op(key, images, labels, *, knobs) ->
(images, labels)` on images `[B, H, W, C]` (float32, bfloat16, float16; uint8
for the ops that only select) and dense float labels `[B, K]` (or integer
`[B]` with `num_classes`), usable under `jit`, `vmap`, `shard_map` and
`pmap`. Each is a sampler `sample_<op>(key, *, batch_size, sizes, knobs) ->
MixDraw` holding all its randomness, the one applier `apply_draw`, and the
op's target rule. The occlusions take images only:
`cutout(key, images, *, knobs) -> images`. Importing jaxmix
loads only JAX and NumPy; the trainer and the input pipeline live in
submodules (`jaxmix.train`, `jaxmix.data`) that are imported explicitly.
"""

from jaxmix._src.boxes import (
  Box,
  box_area,
  box_mask,
  sample_cutmix_box,
  sample_cutmix_box_minmax,
)
from jaxmix._src.cmo import cmo, sample_cmo, sample_minority_indices
from jaxmix._src.deprecated import (  # noqa: F401 (two outside __all__)
  cmo_active,
  cutmix_with_box,
  draw_cutmix,
  draw_mixup,
  draw_mixup_or_cutmix,
  minority_example_weights,
  mixup_with_weight,
)
from jaxmix._src.draws import MixDraw, Span, apply_draw, draw_mask, make_draw
from jaxmix._src.erasing import cutout, random_erasing
from jaxmix._src.label_map_pooling import pool_label_map, relabel_targets
from jaxmix._src.labels import (
  check_class_ids,
  mixed_cross_entropy,
  one_hot,
  smooth_labels,
  soft_cross_entropy,
  two_target_cross_entropy,
)
from jaxmix._src.mix_or_cut import mixup_or_cutmix, sample_mixup_or_cutmix
from jaxmix._src.mixing import (
  cutmix,
  mixup,
  sample_cutmix,
  sample_mix_weight,
  sample_mixup,
  sample_partners,
)
from jaxmix._src.mixtoken import mixtoken, sample_mixtoken, token_labeling_loss
from jaxmix._src.photometric import (
  PhotometricDraw,
  apply_photometric,
  photometric,
  sample_photometric,
)
from jaxmix._src.relabel_cutmix import (
  localized_cutmix_targets,
  region_crop_boxes,
  relabel_cutmix,
  sample_relabel_cutmix,
)
from jaxmix._src.saliency import (
  saliency_cutmix,
  salient_peaks,
  sample_saliency_cutmix,
)
from jaxmix._src.sharding import device_key, per_shard
from jaxmix._src.token_labels import token_boxes, token_label_targets
from jaxmix._src.video import sample_videomix, videomix

__version__ = '0.1.0'

__all__ = (
  'Box',
  'MixDraw',
  'PhotometricDraw',
  'Span',
  'apply_draw',
  'apply_photometric',
  'box_area',
  'box_mask',
  'check_class_ids',
  'cmo',
  'cutmix',
  'cutmix_with_box',
  'cutout',
  'device_key',
  'draw_cutmix',
  'draw_mask',
  'draw_mixup',
  'draw_mixup_or_cutmix',
  'localized_cutmix_targets',
  'make_draw',
  'mixed_cross_entropy',
  'mixtoken',
  'mixup',
  'mixup_or_cutmix',
  'mixup_with_weight',
  'one_hot',
  'per_shard',
  'photometric',
  'pool_label_map',
  'random_erasing',
  'region_crop_boxes',
  'relabel_cutmix',
  'relabel_targets',
  'saliency_cutmix',
  'salient_peaks',
  'sample_cmo',
  'sample_cutmix',
  'sample_cutmix_box',
  'sample_cutmix_box_minmax',
  'sample_minority_indices',
  'sample_mix_weight',
  'sample_mixtoken',
  'sample_mixup',
  'sample_mixup_or_cutmix',
  'sample_partners',
  'sample_photometric',
  'sample_relabel_cutmix',
  'sample_saliency_cutmix',
  'sample_videomix',
  'smooth_labels',
  'soft_cross_entropy',
  'token_boxes',
  'token_label_targets',
  'token_labeling_loss',
  'two_target_cross_entropy',
  'videomix',
)
