"""jaxmix: CutMix, Mixup, Cutout and ReLabel for JAX."""

__version__ = '0.1.0'
