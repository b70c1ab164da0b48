"""Classification metrics of the papers' evaluation protocols, as exact counts.

Every batch metric returns a `Tally` of integer counts (correct, total) so
that padded evaluation batches (`mask` False on padding) and many hosts add up
exactly: `tally.plus(other)`, then `tally.accuracy`. The batch functions are
pure `jax.numpy` and can run under `jit`; `multi_hot`, `subset_indices` and
`class_balanced_accuracy` run on the host. ImageNet-C summaries are in
`jaxmix.evaluate.imagenet_c`.

Label sets (ReaL, the Shankar et al. multi-labels) are multi-hot `[B, K]`
arrays; `multi_hot` builds them from the TFDS sequence features.
"""

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxmix.train import accuracy


class Tally(NamedTuple):
  """Exact counts: `correct` out of `total` (scalars, or `[K]` per class)."""

  correct: ArrayLike
  total: ArrayLike

  def plus(self, other: 'Tally') -> 'Tally':
    """The element-wise sum of two tallies (e.g. of two batches)."""
    return Tally(self.correct + other.correct, self.total + other.total)

  @property
  def accuracy(self) -> float:
    """`sum(correct) / sum(total)`; NaN when nothing was counted."""
    total = int(np.sum(np.asarray(self.total)))
    return float(np.sum(np.asarray(self.correct))) / total if total else np.nan

  def rates(self) -> np.ndarray:
    """Element-wise `correct / total` (e.g. one per hole size), NaN at 0."""
    correct = np.asarray(self.correct, np.float64)
    total = np.asarray(self.total, np.float64)
    with np.errstate(invalid='ignore', divide='ignore'):
      return np.where(total > 0, correct / total, np.nan)


def _check_logits(logits: ArrayLike) -> jax.Array:
  logits = jnp.asarray(logits)
  if logits.ndim != 2:
    raise ValueError(f'`logits` must be [B, K], got shape {logits.shape}.')
  return logits


def _valid(mask: ArrayLike | None, batch_size: int) -> jax.Array:
  if mask is None:
    return jnp.ones((batch_size,), bool)
  mask = jnp.asarray(mask)
  if mask.shape != (batch_size,):
    raise ValueError(
      f'`mask` must be [B] = ({batch_size},), got shape {mask.shape}.'
    )
  return mask.astype(bool)


def _check_rows(name: str, value: ArrayLike, shape: tuple[int, ...]):
  value = jnp.asarray(value)
  if value.shape != shape:
    raise ValueError(f'`{name}` must have shape {shape}, got {value.shape}.')
  return value


def _tally(hit: jax.Array, valid: jax.Array) -> Tally:
  return Tally(
    jnp.sum(hit & valid, dtype=jnp.int32), jnp.sum(valid, dtype=jnp.int32)
  )


def top_k_tally(
  logits: ArrayLike,
  labels: ArrayLike,
  *,
  k: int = 1,
  mask: ArrayLike | None = None,
) -> Tally:
  """Top-k accuracy counts of a (possibly padded) batch.

  Standard ImageNet protocol (both papers): correct when the label is among
  the `k` highest logits. Ties are broken by `jax.lax.top_k` (lower index
  first).

  Args:
    logits: float `[B, K]`.
    labels: int `[B]` class indices.
    k: static, `1 <= k <= K`.
    mask: bool `[B]`, False on padding (not counted); None counts all.

  Returns:
    `Tally` of int32 scalars.
  """
  logits = _check_logits(logits)
  batch, num_classes = logits.shape
  labels = _check_rows('labels', labels, (batch,))
  if not 1 <= k <= num_classes:
    raise ValueError(f'`k` must be in [1, {num_classes}], got {k}.')
  (hit,) = accuracy.top_k_correct(logits, labels, (k,))
  return _tally(hit, _valid(mask, batch))


def real_tally(
  logits: ArrayLike, real_labels: ArrayLike, *, mask: ArrayLike | None = None
) -> Tally:
  """ReaL top-1 counts (Beyer et al. 2020, "Are we done with ImageNet?").

  The top-1 prediction is correct when it is in the image's set of ReaL
  labels; images whose ReaL set is empty are excluded (not counted in
  `total`), as in the paper's release and TFDS `imagenet2012_real`.

  Args:
    logits: float `[B, K]`.
    real_labels: multi-hot `[B, K]` (bool, int or float; > 0 means in the
      set), e.g. `multi_hot` of the TFDS `real_label` feature.
    mask: bool `[B]`, False on padding.

  Returns:
    `Tally` of int32 scalars.
  """
  logits = _check_logits(logits)
  real = _check_rows('real_labels', real_labels, logits.shape) > 0
  pred = jnp.argmax(logits, axis=-1)
  hit = jnp.take_along_axis(real, pred[:, None], axis=-1)[:, 0]
  valid = _valid(mask, logits.shape[0]) & jnp.any(real, axis=-1)
  return _tally(hit, valid)


def _multilabel_hits(logits, correct_labels, unclear_labels, lenient_unclear):
  logits = _check_logits(logits)
  good = _check_rows('correct_labels', correct_labels, logits.shape) > 0
  if lenient_unclear:
    unclear = _check_rows('unclear_labels', unclear_labels, logits.shape)
    good = good | (unclear > 0)
  pred = jnp.argmax(logits, axis=-1)
  return logits, jnp.take_along_axis(good, pred[:, None], axis=-1)[:, 0]


def multilabel_tally(
  logits: ArrayLike,
  correct_labels: ArrayLike,
  unclear_labels: ArrayLike,
  is_problematic: ArrayLike,
  *,
  mask: ArrayLike | None = None,
  lenient_unclear: bool = True,
) -> Tally:
  """Multi-label accuracy counts of Shankar et al. 2020 (ICML).

  TFDS `imagenet2012_multilabel` (v3.0.0, 20 000 annotated validation
  images) provides `correct_multi_labels`, `wrong_multi_labels`,
  `unclear_multi_labels` (label sequences), `is_problematic` (bool) and
  `original_label`. Following the dataset's documentation, problematic images
  are excluded, and the top-1 prediction is correct when it is in the correct
  labels or, with `lenient_unclear` (the recommended default), in the unclear
  labels. `wrong_multi_labels` is not needed: every other prediction is wrong.
  The dataset also recommends averaging per-class accuracies: see
  `multilabel_class_tally`.

  Args:
    logits: float `[B, K]`.
    correct_labels: multi-hot `[B, K]` of `correct_multi_labels`.
    unclear_labels: multi-hot `[B, K]` of `unclear_multi_labels` (ignored when
      `lenient_unclear` is False).
    is_problematic: bool `[B]`.
    mask: bool `[B]`, False on padding.
    lenient_unclear: count unclear labels as correct.

  Returns:
    `Tally` of int32 scalars.
  """
  logits, hit = _multilabel_hits(
    logits, correct_labels, unclear_labels, lenient_unclear
  )
  batch = logits.shape[0]
  problem = _check_rows('is_problematic', is_problematic, (batch,))
  return _tally(hit, _valid(mask, batch) & ~problem.astype(bool))


def multilabel_class_tally(
  logits: ArrayLike,
  correct_labels: ArrayLike,
  unclear_labels: ArrayLike,
  is_problematic: ArrayLike,
  original_labels: ArrayLike,
  *,
  mask: ArrayLike | None = None,
  lenient_unclear: bool = True,
) -> Tally:
  """`multilabel_tally` counted per original class: a `Tally` of `[K]` arrays.

  Feed the summed tally to `class_balanced_accuracy` for the per-class
  average that the TFDS `imagenet2012_multilabel` documentation recommends
  (the annotated set is class balanced, the problematic images are not).

  Args:
    logits, correct_labels, unclear_labels, is_problematic, mask,
      lenient_unclear: as in `multilabel_tally`.
    original_labels: int `[B]`, the `original_label` feature.

  Returns:
    `Tally` of int32 `[K]` arrays.
  """
  logits, hit = _multilabel_hits(
    logits, correct_labels, unclear_labels, lenient_unclear
  )
  batch, num_classes = logits.shape
  problem = _check_rows('is_problematic', is_problematic, (batch,))
  classes = _check_rows('original_labels', original_labels, (batch,))
  valid = _valid(mask, batch) & ~problem.astype(bool)
  zeros = jnp.zeros((num_classes,), jnp.int32)
  return Tally(
    zeros.at[classes].add((hit & valid).astype(jnp.int32)),
    zeros.at[classes].add(valid.astype(jnp.int32)),
  )


def class_balanced_accuracy(tally: Tally) -> float:
  """Mean of per-class accuracies over the classes with `total > 0`."""
  correct, total = np.asarray(tally.correct), np.asarray(tally.total)
  if correct.ndim != 1 or correct.shape != total.shape:
    raise ValueError(
      f'`tally` must hold per-class [K] counts, got shapes {correct.shape} '
      f'and {total.shape}.'
    )
  seen = total > 0
  if not seen.any():
    raise ValueError('`tally` has no counted class (all totals are 0).')
  return float(np.mean(correct[seen] / total[seen]))


def multi_hot(label_sets: ArrayLike | Sequence, num_classes: int) -> np.ndarray:
  """Multi-hot `[B, K]` bool from label sequences (host side).

  Args:
    label_sets: a padded int `[B, L]` array with -1 as padding (what
      `padded_batch` of a TFDS sequence feature gives) or a list of `B`
      integer sequences.
    num_classes: K.

  Returns:
    bool `[B, K]`.
  """
  rows = [np.asarray(s, np.int64).reshape(-1) for s in label_sets]
  out = np.zeros((len(rows), num_classes), bool)
  for i, row in enumerate(rows):
    row = row[row >= 0]
    if (row >= num_classes).any():
      raise ValueError(
        f'`label_sets[{i}]` has labels {row.tolist()} outside [0, '
        f'{num_classes}).'
      )
    out[i, row] = True
  return out


def subset_indices(
  subset_wnids: Sequence[str], class_wnids: Sequence[str]
) -> np.ndarray:
  """Indices of `subset_wnids` in the full class list, e.g. ImageNet-A's 200.

  ImageNet-A and ImageNet-R each cover 200 of the 1000 ImageNet classes.
  TFDS (`imagenet_a`, `imagenet_r`) labels them in the 1000-class space and
  does not list the 200 classes in its metadata; they are the synset
  directories of the official archives (listed in Hendrycks et al.'s
  evaluation code), and equally the set of labels that occur in the TFDS
  test split: see `subset_from_labels`.

  Args:
    subset_wnids: the subset's WordNet ids, e.g. 'n01498041'.
    class_wnids: all class wnids in label order (TFDS
      `info.features['label'].names` of `imagenet2012`).

  Returns:
    int32 `[S]`, in the order of `subset_wnids`.
  """
  position = {w: i for i, w in enumerate(class_wnids)}
  unknown = [w for w in subset_wnids if w not in position]
  if unknown:
    raise ValueError(f'`subset_wnids` not in `class_wnids`: {unknown[:5]}.')
  if len(set(subset_wnids)) != len(subset_wnids):
    raise ValueError('`subset_wnids` has duplicates.')
  return np.asarray([position[w] for w in subset_wnids], np.int32)


def subset_from_labels(labels: ArrayLike, expected_size: int = 200):
  """The sorted distinct labels of a whole split; `expected_size` of them.

  Every ImageNet-A / ImageNet-R class has images, so the labels of the full
  TFDS test split give the 200-class subset offline.
  """
  subset = np.unique(np.asarray(labels).reshape(-1)).astype(np.int32)
  if subset.size != expected_size:
    raise ValueError(
      f'`labels` hold {subset.size} distinct classes, expected '
      f'{expected_size}; pass the labels of the whole split.'
    )
  return subset


def subset_tally(
  logits: ArrayLike,
  labels: ArrayLike,
  subset: ArrayLike,
  *,
  k: int = 1,
  mask: ArrayLike | None = None,
) -> Tally:
  """Top-k counts with the logits restricted to a class subset (ImageNet-A/R).

  Hendrycks et al.'s protocol for ImageNet-A and ImageNet-R: keep the logits
  of the 200 subset classes only, take the top-k inside the subset and map
  them back to full-space class indices. Labels outside the subset can never
  be predicted and count as errors.

  Args:
    logits: float `[B, K]` over all classes.
    labels: int `[B]` in the full K-class space (as TFDS gives them).
    subset: int `[S]` class indices (`subset_indices`, `subset_from_labels`).
    k: static, `1 <= k <= S`.
    mask: bool `[B]`, False on padding.

  Returns:
    `Tally` of int32 scalars.
  """
  logits = _check_logits(logits)
  subset = jnp.asarray(subset)
  if subset.ndim != 1 or not jnp.issubdtype(subset.dtype, jnp.integer):
    raise ValueError(
      f'`subset` must be int [S], got shape {subset.shape}, {subset.dtype}.'
    )
  if not 1 <= k <= subset.shape[0]:
    raise ValueError(f'`k` must be in [1, {subset.shape[0]}], got {k}.')
  batch = logits.shape[0]
  labels = _check_rows('labels', labels, (batch,))
  _, top = jax.lax.top_k(logits[:, subset], k)
  hit = jnp.any(subset[top] == labels[:, None], axis=-1)
  return _tally(hit, _valid(mask, batch))
