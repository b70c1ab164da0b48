"""Evaluation suite: the protocols the CutMix and ReLabel papers report.

The submodules are pure pieces that an evaluation run combines; importing
this package imports none of them (matplotlib and scipy load only with the
modules that need them):

- `jaxmix.evaluate.metrics`: top-k with padding masks, ReaL, the Shankar et
  al. multi-label accuracy, the ImageNet-A/R 200-class restriction.
- `jaxmix.evaluate.imagenet_c`: ImageNet-C mean accuracy and mCE with the
  AlexNet reference errors.
- `jaxmix.evaluate.robustness`: centre/boundary occlusion, in-between-class
  (Mixup-ed and CutMix-ed) accuracy, FGSM, as functions of a `logits_fn`.
- `jaxmix.evaluate.ood`: max-softmax out-of-distribution detection (TNR at
  TPR 95%, AUROC, detection accuracy).
- `jaxmix.evaluate.localization`: class activation maps, boxes from CAMs,
  IoU, top-1 localisation accuracy and MaxBoxAcc.
- `jaxmix.evaluate.plots`: CAM grids, robustness curves, training curves.
"""
