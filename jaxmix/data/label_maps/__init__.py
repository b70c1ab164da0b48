"""ReLabel's label maps on disk: the data layer's part of ReLabel.

Imported by path (nothing is imported here):

- `jaxmix.data.label_maps.store`: the label-map store (`LabelMapStore`),
  memory-mapped top-k maps keyed by file name.
- `jaxmix.data.label_maps.manifest`: its files, metadata and the checks
  made at every open; `jaxmix.data.label_maps.integrity`: the digests and
  value checks of `verify`.
- `jaxmix.data.label_maps.writer`: `LabelMapWriter` writes one.
- `jaxmix.data.label_maps.join`: attaches maps to host train batches by
  file name (`open_label_maps`).
- `jaxmix.data.label_maps.convert`: the official ReLabel release to a store.

The rest of ReLabel lives with its layer: the pure-JAX pooling and
ReLabel-CutMix targets in the library (`jaxmix.pool_label_map`,
`jaxmix.relabel_targets`, `jaxmix.relabel_cutmix`), the trainer's hook in
`jaxmix.train.relabel` (beside CMO's and token labeling's), the annotator
and the viewer in `jaxmix.evaluate` (`annotator`, `label_map_viewer`).
"""
