"""File formats read without their native libraries, paths, command lines.

- `torch_files`: PyTorch's `torch.save` files (zip or legacy), read with a
  restricted unpickler into NumPy arrays, without importing torch.
- `paths`: the one path layer (`etils.epath`) of run directories, so that
  `gs://` and other URLs work where local folders do.
- `command_line`: the absl-flags parsing of every jaxmix command (the
  applications and the dataset builders).
"""
