"""ReLabel: localised multi-label targets from a machine annotator's maps.

Everything ReLabel lives here. The pure-JAX part is re-exported by `jaxmix`
and is all this package imports on its own (JAX and NumPy only):

- `pooling`: RoIAlign pooling of top-k label maps over crop boxes and the
  softmax targets (`jaxmix.pool_label_map`, `jaxmix.relabel_targets`).
- `cutmix`: ReLabel + CutMix targets (`jaxmix.relabel_cutmix`,
  `jaxmix.localized_cutmix_targets`, `jaxmix.region_crop_boxes`).

The rest is imported explicitly, by path:

- `store`: the label-map store on disk (`LabelMapStore`), `writer` writes
  one, `join` attaches maps to host train batches by file name,
  `convert` turns the official ReLabel release into a store.
- `train_targets`: the trainer's per-shard ReLabel targets from a batch.
- `annotator`: a trained classifier run fully convolutionally over a
  split, writing a store; `viewer`: pictures of maps over their images.
"""

from jaxmix.relabel.cutmix import (
  localized_cutmix_targets,
  region_crop_boxes,
  relabel_cutmix,
)
from jaxmix.relabel.pooling import pool_label_map, relabel_targets

__all__ = (
  'localized_cutmix_targets',
  'pool_label_map',
  'region_crop_boxes',
  'relabel_cutmix',
  'relabel_targets',
)
