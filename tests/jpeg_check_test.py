"""A JPEG whose entropy-coded data is overwritten (header intact) decodes
without an error in TensorFlow and PIL; the verify pass refuses it."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from jaxmix.apps import verify_images
from jaxmix.data import jpeg_check


def _gradient() -> np.ndarray:
  x = np.linspace(0, 255, 128)
  rows, cols = np.meshgrid(x, x)
  return np.stack([rows, cols, np.full_like(x, 128)[None].repeat(128, 0)], -1)


def _jpeg(image: np.ndarray) -> bytes:
  out = io.BytesIO()
  Image.fromarray(image.astype(np.uint8)).save(out, 'JPEG', quality=90)
  return out.getvalue()


def _overwrite_scan(data: bytes, seed: int) -> bytes:
  """Random bytes (no 0xFF: no markers) over the scan, headers and EOI kept."""
  sos = data.index(b'\xff\xda')
  start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], 'big') + 10
  noise = np.random.RandomState(seed).randint(0, 255, len(data) - 2 - start)
  return data[:start] + noise.astype(np.uint8).tobytes() + data[-2:]


@pytest.mark.parametrize('seed', [0, 1])
def test_an_overwritten_scan_decodes_silently_but_is_reported(seed):
  image = _gradient()
  good = _jpeg(image)
  bad = _overwrite_scan(good, seed)
  # The failure: both decoders return an image, most pixels wrong.
  decoded = tf.io.decode_jpeg(bad, channels=3).numpy().astype(int)
  assert np.mean(np.abs(decoded - image) > 32) > 0.3
  with Image.open(io.BytesIO(bad)) as pil:
    pil.load()
  # The verify pass sees libjpeg's warning.
  assert jpeg_check.jpeg_warnings(good) == []
  warnings = jpeg_check.jpeg_warnings(bad)
  assert warnings and warnings[0].startswith('Corrupt JPEG data: ')


def test_a_file_that_does_not_decode_is_reported():
  assert jpeg_check.jpeg_warnings(b'\xff\xd8 not a jpeg')[-1].startswith(
    'does not decode: '
  )


def test_the_command_names_each_bad_file(tmp_path, capsys):
  good = _jpeg(_gradient())
  (tmp_path / 'a').mkdir()
  (tmp_path / 'a' / 'good.JPEG').write_bytes(good)
  (tmp_path / 'a' / 'bad.jpg').write_bytes(_overwrite_scan(good, 0))
  with pytest.raises(SystemExit) as exit_:
    verify_images.main(['--dir', str(tmp_path)])
  message = str(exit_.value.code)
  assert message.startswith('1 problems in 2 images')
  assert f'{tmp_path / "a" / "bad.jpg"}: Corrupt JPEG data' in message
  assert 'good.JPEG' not in message
  (tmp_path / 'a' / 'bad.jpg').unlink()
  verify_images.main(['--dir', str(tmp_path)])
  assert '1 images decode without warnings' in capsys.readouterr().out
