"""Finds JPEGs whose entropy-coded data is corrupt, as libjpeg reports it.

A JPEG whose headers are intact but whose entropy-coded (scan) data is
damaged still decodes: libjpeg warns ("Corrupt JPEG data: bad Huffman
code", "... premature end of data segment", "... N extraneous bytes before
marker"), fills the damaged part with whatever the remaining bits give and
returns the image, and TensorFlow's `decode_jpeg` (and PIL) return it
without an error. Training on it is silent. `jpeg_warnings` decodes with
TensorFlow's libjpeg and returns those warnings, so a verify pass at
preparation time (`python -m jaxmix.apps.verify_images`) can refuse such
files. libjpeg prints its warnings on the process's standard error, so the
check captures file descriptor 2 around each decode: run it in a pass of
its own, not inside training.

What no decoder can detect: damage that leaves a valid bit stream. JPEG
has no checksum; a changed coefficient bit, or an overwrite whose bytes
happen to form valid Huffman codes that end exactly where the scan ends,
decodes without a warning into a wrong image. Only a digest recorded when
the file was known good (the dataset's own checksums) catches that.
Truncated files, bad markers and broken headers make `decode_jpeg` fail
outright; they are reported too.
"""

from __future__ import annotations

import os
import tempfile

_MARK = b'Corrupt JPEG data'


def jpeg_warnings(data: bytes) -> list[str]:
  """libjpeg's complaints about a JPEG; empty when it decodes cleanly.

  Args:
    data: the encoded file.

  Returns:
    The warning lines ('Corrupt JPEG data: ...'), or the decoder's error
    as one line when the file does not decode at all.
  """
  import tensorflow as tf  # The check is a data-preparation tool.

  with tempfile.TemporaryFile() as captured:
    saved = os.dup(2)
    os.dup2(captured.fileno(), 2)
    try:
      tf.io.decode_jpeg(data, channels=3).numpy()
      error = None
    except tf.errors.InvalidArgumentError as e:
      error = e.message.strip().splitlines()[-1].split('}} ')[-1]
    finally:
      os.dup2(saved, 2)
      os.close(saved)
    captured.seek(0)
    text = captured.read()
  found = [
    line.decode('utf-8', 'replace').strip()
    for line in text.splitlines()
    if _MARK in line
  ]
  return found + ([f'does not decode: {error}'] if error else [])
