"""jaxmix's applications: thin command lines over the library and trainer.

  python -m jaxmix.apps.train       train a recipe (`--config`, `--workdir`)
  python -m jaxmix.apps.demo        the offline default job; `--all` runs
                                    every recipe (`experiment`)
  python -m jaxmix.apps.evaluate    evaluation suites over trained runs
  python -m jaxmix.apps.annotate    ReLabel label maps from a trained CNN
  python -m jaxmix.apps.view_label_maps  a label map over its image
  python -m jaxmix.apps.verify_label_maps  a label-map store is whole
  python -m jaxmix.apps.verify_images  JPEGs libjpeg reports as corrupt
  python -m jaxmix.apps.preview     the augmentations on real photos

Each parses its arguments and calls the library; nothing else imports
from here, except that the demo calls the experiment and both use
`digit_runs`.
"""
