"""jaxmix: CutMix, Mixup, Cutout and ReLabel for JAX.

Every augmentation is a pure function `op(key, images, labels, *, knobs) ->
(images, labels)` on float images `[B, H, W, C]` and dense float labels
`[B, K]`, usable under `jit`, `vmap`, `shard_map` and `pmap`. Importing jaxmix
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
from jaxmix._src.class_labels import (
  mixed_cross_entropy,
  two_target_cross_entropy,
)
from jaxmix._src.cmo import (
  cmo,
  cmo_active,
  minority_example_weights,
  sample_minority_indices,
)
from jaxmix._src.draw_appliers import apply_draw
from jaxmix._src.draw_samplers import draw_cutmix, draw_mixup
from jaxmix._src.draws import MixDraw, Span, draw_mask, make_draw
from jaxmix._src.erasing import cutout, random_erasing
from jaxmix._src.label_map_pooling import pool_label_map, relabel_targets
from jaxmix._src.labels import one_hot, smooth_labels, soft_cross_entropy
from jaxmix._src.mix_or_cut import draw_mixup_or_cutmix, mixup_or_cutmix
from jaxmix._src.mixing import (
  cutmix,
  cutmix_with_box,
  mixup,
  mixup_with_weight,
  sample_cutmix,
  sample_mix_weight,
  sample_partners,
)
from jaxmix._src.mixtoken import mixtoken, token_labeling_loss
from jaxmix._src.relabel_cutmix import (
  localized_cutmix_targets,
  region_crop_boxes,
  relabel_cutmix,
)
from jaxmix._src.saliency import (
  saliency_cutmix,
  salient_peaks,
  sample_saliency_cutmix,
)
from jaxmix._src.sharding import per_shard
from jaxmix._src.token_labels import token_boxes, token_label_targets
from jaxmix._src.video import sample_videomix, videomix

__version__ = '0.1.0'

__all__ = (
  'Box',
  'MixDraw',
  'Span',
  'apply_draw',
  'box_area',
  'box_mask',
  'cmo',
  'cmo_active',
  'cutmix',
  'cutmix_with_box',
  'cutout',
  'draw_cutmix',
  'draw_mask',
  'draw_mixup',
  'draw_mixup_or_cutmix',
  'localized_cutmix_targets',
  'make_draw',
  'minority_example_weights',
  'mixed_cross_entropy',
  'mixtoken',
  'mixup',
  'mixup_or_cutmix',
  'mixup_with_weight',
  'one_hot',
  'per_shard',
  'pool_label_map',
  'random_erasing',
  'region_crop_boxes',
  'relabel_cutmix',
  'relabel_targets',
  'saliency_cutmix',
  'salient_peaks',
  'sample_cutmix',
  'sample_cutmix_box',
  'sample_cutmix_box_minmax',
  'sample_minority_indices',
  'sample_mix_weight',
  'sample_partners',
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
