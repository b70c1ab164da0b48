"""jaxmix's applications: thin command lines over the library and trainer.

  python -m jaxmix.apps.train       train a recipe (`--config`, `--workdir`)
  python -m jaxmix.apps.demo        the offline default job
  python -m jaxmix.apps.evaluate    evaluation suites over trained runs
  python -m jaxmix.apps.report      result tables and pictures over runs
  python -m jaxmix.apps.annotate    ReLabel label maps from a trained CNN
  python -m jaxmix.apps.view_label_maps  a label map over its image
  python -m jaxmix.apps.convert_label_maps  the official ReLabel maps
  python -m jaxmix.apps.export      a run's weights as a PyTorch state dict
  python -m jaxmix.apps.verify_label_maps  a label-map store is whole
  python -m jaxmix.apps.verify_images  JPEGs libjpeg reports as corrupt
  python -m jaxmix.apps.preview     the augmentations on real photos

Each parses its flags (absl, through `jaxmix.io.command_line`) and calls the
library; nothing else in jaxmix imports from here. The digit study of
`projects/digit_study/` (outside the package) builds on `digit_runs`.
"""
