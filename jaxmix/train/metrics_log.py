"""Training logs: console lines, TensorBoard event files and metrics.jsonl.

The TensorBoard writer here is a small dependency-free encoder of the event
file format (TFRecord framing with masked CRC-32C around `Event` protocol
buffers holding scalar summaries), so that logging needs no TensorFlow.
Only the primary process (index 0) writes; the others get a no-op logger.
Files go through `jaxmix.io.paths`, so the run directory may be a URL.
"""

import contextlib
import json
import math
import socket
import struct
import time
from collections.abc import Mapping

from absl import logging

from jaxmix.io import paths


def _crc32c_table() -> list[int]:
  table = []
  for byte in range(256):
    crc = byte
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    table.append(crc)
  return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
  """CRC-32C (Castagnoli) of `data`."""
  crc = 0xFFFFFFFF
  for byte in data:
    crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
  crc = crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
  out = bytearray()
  while True:
    bits, value = value & 0x7F, value >> 7
    out.append(bits | (0x80 if value else 0))
    if not value:
      return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
  return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_event(
  wall_time: float,
  step: int,
  *,
  scalars: Mapping[str, float] | None = None,
  file_version: str | None = None,
) -> bytes:
  """Serialises a `tensorflow.Event` with simple-value scalar summaries."""
  event = b'\x09' + struct.pack('<d', wall_time)  # 1: wall_time (double)
  event += b'\x10' + _varint(step)  # 2: step (int64)
  if file_version is not None:
    event += _field_bytes(3, file_version.encode())
  if scalars:
    summary = b''
    for tag, value in scalars.items():
      item = _field_bytes(1, tag.encode())  # Summary.Value.tag
      item += b'\x15' + struct.pack('<f', value)  # simple_value (float)
      summary += _field_bytes(1, item)  # Summary.value
    event += _field_bytes(5, summary)  # 5: summary
  return event


def encode_record(data: bytes) -> bytes:
  """TFRecord framing: length, masked CRC of it, data, masked CRC of data."""
  length = struct.pack('<Q', len(data))
  return (
    length
    + struct.pack('<I', _masked_crc(length))
    + data
    + struct.pack('<I', _masked_crc(data))
  )


class EventFileWriter:
  """Appends scalar summaries to a TensorBoard event file in `logdir`.

  The file is created at the first summary, so a start that logs nothing
  (a resume with nothing to do) leaves the run directory as it was.
  """

  def __init__(self, logdir: paths.PathLike):
    name = f'events.out.tfevents.{int(time.time())}.{socket.gethostname()}'
    self.path = paths.resolve(logdir) / name
    self._file = None

  def _opened(self):
    if self._file is None:
      self.path.parent.mkdir(parents=True, exist_ok=True)
      self._file = self.path.open('ab')  # closed in close()
      header = encode_event(time.time(), 0, file_version='brain.Event:2')
      self._file.write(encode_record(header))
    return self._file

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    self._opened().write(
      encode_record(encode_event(time.time(), step, scalars=values))
    )

  def flush(self) -> None:
    if self._file is not None:
      self._file.flush()

  def close(self) -> None:
    if self._file is not None:
      self._file.close()


def format_duration(seconds: float) -> str:
  """`3725.0 -> '1:02:05'`."""
  if not math.isfinite(seconds):
    return '?'
  seconds = round(seconds)
  return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


class MetricLogger:
  """Writes metrics to the console, TensorBoard and `metrics.jsonl`.

  Args:
    workdir: the run directory; event files go to `workdir/tensorboard`.
    enabled: False on non-primary processes (nothing is written).
  """

  def __init__(self, workdir: paths.PathLike, *, enabled: bool = True):
    self.enabled = enabled
    self._closed = False
    if not enabled:
      return
    workdir = paths.resolve(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    self._events = EventFileWriter(workdir / 'tensorboard')
    self._jsonl = (workdir / 'metrics.jsonl').open('a')  # closed in close()

  def write(
    self, step: int, metrics: Mapping[str, float], *, prefix: str
  ) -> None:
    """Records `metrics` at `step` as `'{prefix}/{name}'` scalars."""
    if not self.enabled:
      return
    values = {f'{prefix}/{k}': float(v) for k, v in metrics.items()}
    self._events.scalars(step, values)
    self._events.flush()
    record = {'step': int(step), 'time': time.time(), **values}
    self._jsonl.write(json.dumps(record) + '\n')
    self._jsonl.flush()

  def progress(
    self,
    *,
    step: int,
    total_steps: int,
    epoch: float,
    metrics: Mapping[str, float],
    images_per_second: float,
    eta_seconds: float,
  ) -> None:
    """One console line: step, epoch, loss, accuracy, img/s, ETA."""
    if not self.enabled:
      return
    logging.info(
      'step %d/%d  epoch %.2f  loss %.4f  top1 %.4f  lr %.4g  %.1f img/s  '
      'ETA %s',
      step,
      total_steps,
      epoch,
      metrics['loss'],
      metrics['top1'],
      metrics['learning_rate'],
      images_per_second,
      format_duration(eta_seconds),
    )

  def info(self, message: str, *args: object) -> None:
    if self.enabled:
      logging.info(message, *args)

  def warning(self, message: str, *args: object) -> None:
    if self.enabled:
      logging.warning(message, *args)

  def close(self) -> None:
    """Closes the files (twice is fine: errors and normal ends both call)."""
    if self.enabled and not self._closed:
      self._closed = True
      self._events.close()
      self._jsonl.close()


class Progress:
  """Times training (evaluation excluded) and writes the train logs."""

  def __init__(
    self,
    logger: MetricLogger,
    *,
    total_steps: int,
    steps_per_epoch: int,
    batch_size: int,
    start_step: int,
  ):
    self._logger = logger
    self._total, self._per_epoch = total_steps, steps_per_epoch
    self._batch = batch_size
    self._start = time.perf_counter()
    self._last_time, self._last_step, self._paused = None, start_step, 0.0

  @property
  def first(self) -> bool:
    """No report yet: the next one measures compilation."""
    return self._last_time is None

  @contextlib.contextmanager
  def paused(self):
    """Time spent inside does not count towards images/s."""
    start = time.perf_counter()
    yield
    self._paused += time.perf_counter() - start

  def report(self, step: int, means: dict[str, float]) -> None:
    now = time.perf_counter()
    if self._last_time is None:
      self._logger.info(
        'first step took %.1f s (compilation)', now - self._start
      )
    else:
      elapsed = max(now - self._last_time - self._paused, 1e-9)
      rate = (step - self._last_step) * self._batch / elapsed
      self._logger.progress(
        step=step,
        total_steps=self._total,
        epoch=step / self._per_epoch,
        metrics=means,
        images_per_second=rate,
        eta_seconds=(self._total - step) * self._batch / rate,
      )
      self._logger.write(
        step, {**means, 'images_per_second': rate}, prefix='train'
      )
    self._last_time, self._last_step, self._paused = now, step, 0.0
