"""tf.data/TFDS input pipelines, crops with boxes and offline datasets.

Import the submodules directly (`from jaxmix.data import input_pipeline`):
this package imports nothing itself, so that `import jaxmix` never pulls in
TensorFlow.
"""
