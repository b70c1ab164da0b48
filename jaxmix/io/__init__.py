"""File formats that jaxmix reads without their native libraries.

- `torch_files`: PyTorch's `torch.save` files (zip or legacy), read with a
  restricted unpickler into NumPy arrays, without importing torch.
"""
