"""Out-of-distribution detection with the max-softmax baseline.

Hendrycks & Gimpel (ICLR 2017), "A Baseline for Detecting Misclassified and
Out-of-Distribution Examples": the score of an image is its maximum softmax
probability; in-distribution images (positives) should score higher than
out-of-distribution ones. The CutMix paper reports this baseline for
CIFAR-100 PyramidNet-200 models with three metrics, computed here exactly
(no threshold grid):

- TNR at TPR 95%: the threshold keeps (at least) 95% of the in-distribution
  images; TNR is the share of OOD images below it.
- AUROC: the probability that a random in-distribution image scores higher
  than a random OOD image, ties counted one half (Mann-Whitney U).
- Detection accuracy: `max_t 0.5 * (TPR(t) + TNR(t))`, i.e. one minus the
  detection error of ODIN (Liang et al. 2018) and later work.

An image is called in-distribution when `score >= t`. All functions run on
the host (NumPy) over the whole test sets. AUROC and detection accuracy
come from scikit-learn's ROC functions; TNR at TPR 95% is counted here,
because its threshold rule (at least 95% kept, OOD strictly below) is one
that `roc_curve`'s thresholds do not state directly.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from sklearn import metrics


def max_softmax_scores(logits: ArrayLike) -> jax.Array:
  """Maximum softmax probability per image: `[B, K] -> float32 [B]`."""
  logits = jnp.asarray(logits)
  if logits.ndim != 2:
    raise ValueError(f'`logits` must be [B, K], got shape {logits.shape}.')
  return jnp.max(jax.nn.softmax(logits.astype(jnp.float32), axis=-1), axis=-1)


def _scores(name: str, scores: ArrayLike) -> np.ndarray:
  scores = np.asarray(scores, np.float64)
  if scores.ndim != 1 or scores.size == 0:
    raise ValueError(
      f'`{name}` must be a non-empty 1-D array, got shape {scores.shape}.'
    )
  if not np.all(np.isfinite(scores)):
    raise ValueError(f'`{name}` has NaN or infinite scores.')
  return scores


def tnr_at_tpr(
  in_scores: ArrayLike, out_scores: ArrayLike, *, tpr: float = 0.95
) -> float:
  """True negative rate at the highest threshold whose TPR is >= `tpr`.

  The threshold is the `ceil(tpr * n_in)`-th largest in-distribution score,
  so at least that many positives are kept (ties may keep more).

  Args:
    in_scores: `[N_in]` scores of in-distribution images.
    out_scores: `[N_out]` scores of OOD images.
    tpr: the true positive rate to reach, in (0, 1].

  Returns:
    The share of OOD scores strictly below the threshold.
  """
  positives = np.sort(_scores('in_scores', in_scores))[::-1]
  negatives = _scores('out_scores', out_scores)
  if not 0.0 < tpr <= 1.0:
    raise ValueError(f'`tpr` must be in (0, 1], got {tpr}.')
  # round() keeps 0.95 * 100 from becoming 95.00000000000001 -> 96.
  kept = math.ceil(round(tpr * positives.size, 9))
  threshold = positives[kept - 1]
  return float(np.mean(negatives < threshold))


def auroc(in_scores: ArrayLike, out_scores: ArrayLike) -> float:
  """Area under the ROC curve, exact, ties counted one half.

  scikit-learn's `roc_auc_score` with the in-distribution images as the
  positive class (equal to the Mann-Whitney U statistic over
  `n_in * n_out`).

  Args:
    in_scores: `[N_in]` scores of in-distribution images.
    out_scores: `[N_out]` scores of OOD images.

  Returns:
    AUROC in [0, 1].
  """
  positives = _scores('in_scores', in_scores)
  negatives = _scores('out_scores', out_scores)
  truth = np.concatenate([np.ones(positives.size), np.zeros(negatives.size)])
  scores = np.concatenate([positives, negatives])
  return float(metrics.roc_auc_score(truth, scores))


def detection_accuracy(in_scores: ArrayLike, out_scores: ArrayLike) -> float:
  """`max_t 0.5 * (TPR(t) + TNR(t))` over every distinct threshold.

  Args:
    in_scores: `[N_in]` scores of in-distribution images.
    out_scores: `[N_out]` scores of OOD images.

  Returns:
    The best balanced accuracy, in [0.5, 1].
  """
  positives = _scores('in_scores', in_scores)
  negatives = _scores('out_scores', out_scores)
  truth = np.concatenate([np.ones(positives.size), np.zeros(negatives.size)])
  # Every distinct score is a threshold (`score >= t`), plus +inf.
  fpr, tpr, _ = metrics.roc_curve(
    truth, np.concatenate([positives, negatives]), drop_intermediate=False
  )
  return float(np.max(0.5 * (tpr + 1.0 - fpr)))


def ood_metrics(
  in_scores: ArrayLike, out_scores: ArrayLike
) -> dict[str, float]:
  """The CutMix paper's three OOD columns, as fractions.

  Returns:
    {'tnr_at_tpr95', 'auroc', 'detection_accuracy'} -> float.
  """
  return {
    'tnr_at_tpr95': tnr_at_tpr(in_scores, out_scores, tpr=0.95),
    'auroc': auroc(in_scores, out_scores),
    'detection_accuracy': detection_accuracy(in_scores, out_scores),
  }
