"""Converts the official ReLabel label maps into a jaxmix label-map store.

The official release (`relabel_imagenet.tar`) holds one `torch.save`d float
tensor per ImageNet training image at `<wnid>/<stem>.pt`, shaped
`[2, k, S, S]` = `[2, 5, 15, 15]`: top-k annotator logits, then their class
ids stored as floats, channels first. This tool reads those files from the
tar (streamed, never unpacked) or from an unpacked directory, checks them,
and writes a store (`jaxmix.data.label_maps.store`) keyed by the TFDS
`imagenet2012` file name `<stem>.JPEG`, with maps channels last
`[S, S, k]` (rows and columns as stored), float16 scores, uint16 ids:

  python -m jaxmix.apps.convert_label_maps --src relabel_imagenet.tar \\
      --out /data/relabel_store --workers 8

PyTorch is not needed: a `.pt` file is read as what it is, either a zip
(`<name>/data.pkl`, a protocol-2 pickle, plus raw little-endian storages in
`<name>/data/<key>`) or the older single-stream format (pickles, then the
storages). The pickle is read by an unpickler that knows only tensors,
storages and OrderedDict and refuses everything else, so a file cannot run
code. A killed conversion resumes where its last chunk ended when run again.
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing
import os
import sys
import tarfile
import time
from collections.abc import Iterator

import numpy as np

from jaxmix.data.label_maps.store import LabelMapStore
from jaxmix.data.label_maps.writer import LabelMapWriter
from jaxmix.io import torch_files

ANNOTATOR = 'EfficientNet-L2 Noisy Student at 475x475 (official ReLabel maps)'


def convert_map(data: bytes, where: str, num_classes: int):
  """One official map file -> (scores float16, indices uint16) `[S, S, k]`."""
  value = torch_files.read_torch_file(data, where)
  if isinstance(value, list) and len(value) == 2:
    value = np.stack(value)  # [scores, indices] saved as two tensors.
  if (
    not isinstance(value, np.ndarray)
    or value.ndim != 4
    or (value.shape[0] != 2 or value.shape[2] != value.shape[3])
  ):
    shape = getattr(value, 'shape', type(value).__name__)
    raise ValueError(f'{where}: expected a [2, k, S, S] tensor, got {shape}.')
  # [k, S, S] -> [S, S, k]: rows and columns keep their order.
  with np.errstate(over='ignore', invalid='ignore'):
    scores = np.transpose(value[0], (1, 2, 0)).astype(np.float16)
  ids = np.transpose(value[1], (1, 2, 0))
  if not np.isfinite(scores).all():
    raise ValueError(f'{where}: scores are not all finite in float16.')
  if not ((ids == np.round(ids)) & (ids >= 0) & (ids < num_classes)).all():
    raise ValueError(
      f'{where}: class indices must be whole numbers in [0, {num_classes}); '
      f'got values in [{ids.min()}, {ids.max()}].'
    )
  return scores, ids.astype(np.uint16)


def file_name_of(member: str, extension: str = '.JPEG') -> str:
  """'n01440764/n01440764_10026.pt' -> 'n01440764_10026.JPEG' (TFDS key)."""
  return os.path.splitext(os.path.basename(member))[0] + extension


def iter_maps(
  src: str, read: list | None = None
) -> Iterator[tuple[str, bytes | str]]:
  """(member path, bytes or file path) of every .pt file, dir or tar.

  For a tar, `read[0]` is kept at the fraction of the file read so far.
  """
  if os.path.isdir(src):
    for root, dirs, files in os.walk(src):
      dirs.sort()
      for name in sorted(f for f in files if f.endswith('.pt')):
        path = os.path.join(root, name)
        yield os.path.relpath(path, src), path
    return
  if not tarfile.is_tarfile(src):
    raise ValueError(f'--src {src} is neither a directory nor a tar file.')
  size = max(os.path.getsize(src), 1)
  with open(src, 'rb') as f, tarfile.open(fileobj=f, mode='r|*') as tar:
    for member in tar:  # Streamed: one pass, no seeks.
      if member.isfile() and member.name.endswith('.pt'):
        data = tar.extractfile(member).read()
        if read is not None:
          read[:] = [f.tell() / size]
        yield member.name, data


def _convert_batch(items, num_classes):
  out = []
  for where, data in items:
    if isinstance(data, str):
      with open(data, 'rb') as f:
        data = f.read()
    out.append((where, *convert_map(data, where, num_classes)))
  return out


def convert(
  src: str,
  out: str,
  *,
  num_classes: int = 1000,
  workers: int = 1,
  extension: str = '.JPEG',
  chunk: int = 8192,
  batch_size: int = 256,
  log_every: float = 10.0,
) -> LabelMapStore:
  """Converts the official maps at `src` (directory or tar) into `out`.

  Running it again on an unfinished `out` resumes it; a finished `out` is
  an error. Progress goes to stderr every `log_every` seconds.

  Returns:
    The finished store, open.
  """
  if not os.path.exists(src):
    raise ValueError(f'--src {src} does not exist.')
  read = [0.0]
  items = iter_maps(src, read)
  first = next(items, None)
  if first is None:
    raise ValueError(f'--src {src} holds no .pt label-map files.')
  probe = _convert_batch([first], num_classes)[0][1]
  size, k = probe.shape[0], probe.shape[2]
  writer = LabelMapWriter(
    out,
    size=size,
    k=k,
    num_classes=num_classes,
    source=f'official ReLabel label maps, {os.path.basename(src)}',
    annotator=ANNOTATOR,
    resume=True,
    chunk=chunk,
  )
  if writer.num_rows:
    print(f'resuming {out} at {writer.num_rows} maps', file=sys.stderr)

  def batches():
    batch = []
    for where, data in itertools.chain([first], items):
      if file_name_of(where, extension) not in writer:
        batch.append((where, data))
      if len(batch) == batch_size:
        yield batch
        batch = []
    if batch:
      yield batch

  start = last_log = time.time()
  done_before = writer.num_rows
  pool = (
    multiprocessing.get_context('spawn').Pool(workers) if workers > 1 else None
  )
  pending = collections.deque()
  try:
    for batch in itertools.chain(batches(), [None]):
      if batch is not None:
        pending.append(
          pool.apply_async(_convert_batch, (batch, num_classes))
          if pool
          else _convert_batch(batch, num_classes)
        )
      # Bounded read-ahead: a tar is never read much past the workers.
      while pending and (batch is None or len(pending) > 2 * workers):
        maps = pending.popleft()
        maps = maps.get() if pool else maps
        for where, scores, _ in maps:
          if scores.shape != (size, size, k):
            raise ValueError(
              f'{where}: map is {scores.shape[:2]} x top-{scores.shape[2]}, '
              f'but the first map read is {size} x {size} x top-{k}.'
            )
        writer.add(
          [file_name_of(w, extension) for w, _, _ in maps],
          np.stack([s for _, s, _ in maps]),
          np.stack([i for _, _, i in maps]),
        )
        if time.time() - last_log > log_every:
          last_log = time.time()
          rate = (writer.num_rows - done_before) / (last_log - start)
          eta = ''
          if 0 < read[0] < 1:  # Known for tars only.
            left = (last_log - start) * (1 - read[0]) / read[0]
            eta = f', {read[0]:.1%} of the tar read, ~{left / 60:.0f} min left'
          print(
            f'{writer.num_rows} maps written, {rate:.0f}/s{eta}',
            file=sys.stderr,
          )
  finally:
    if pool is not None:
      pool.terminate()
  store = writer.finalize()
  print(
    f'{len(store)} label maps in {out} ({_bytes_per_map(store):.0f} B per '
    f'map) in {time.time() - start:.0f} s',
    file=sys.stderr,
  )
  return store


def _bytes_per_map(store: LabelMapStore) -> float:
  files = ('scores.npy', 'indices.npy', 'names.npy', 'rows.npy')
  total = sum(os.path.getsize(os.path.join(store.path, f)) for f in files)
  return total / max(len(store), 1)
