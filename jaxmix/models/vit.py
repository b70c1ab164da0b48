"""Vision Transformers in the DeiT style (Touvron et al., 2021), Flax NNX.

Patch embedding (a `patch x patch` conv with stride `patch`), a learned class
token, learned position embeddings, pre-LayerNorm blocks (multi-head
self-attention, then an MLP with exact GELU), a final LayerNorm and a linear
head on the class token. Dropout, attention dropout and stochastic depth
(drop-path, rising linearly over the blocks as in DeiT) are kwargs; all three
are active in `model.train()` mode and off in `model.eval()` mode, and draw
keys from the 'dropout' stream of the `rngs` given at construction (the
'default' stream if there is none).

ViT-S/16 (dim 384, 6 heads) has 22,050,664 parameters and ViT-Ti/16 (dim 192,
3 heads) 5,717,416 at 224 px with 1000 classes, as timm's DeiT models.
Attention logits and softmax are computed in float32 also under bfloat16.

Token labeling (`token_head=True`, Jiang et al. 2021, LV-ViT): a second
linear head on every patch token (`aux_head`) beside the class-token head.
Training reaches both through `embed` (the patch tokens, where MixToken
mixes) and `encode` (class and per-token logits); `__call__` returns
LV-ViT's inference prediction, the class logits plus 0.5 x the per-class
maximum of the token logits over all tokens (the official `lvvit.py`).
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jaxmix.models.layers import DropPath, check_input

_TRUNC_NORMAL = nnx.initializers.truncated_normal(stddev=0.02)
_ZEROS = nnx.initializers.zeros_init()
_LN_EPSILON = 1e-6


def _linear(din: int, dout: int, kw: dict) -> nnx.Linear:
  return nnx.Linear(
    din, dout, kernel_init=_TRUNC_NORMAL, bias_init=_ZEROS, **kw
  )


class Attention(nnx.Module):
  """Multi-head self-attention with a fused qkv projection."""

  def __init__(
    self,
    dim: int,
    num_heads: int,
    *,
    attention_dropout: float,
    dropout: float,
    kw: dict,
  ):
    if dim % num_heads:
      raise ValueError(
        f'`dim` ({dim}) must be divisible by `num_heads` ({num_heads}).'
      )
    self.num_heads = num_heads
    self.qkv = _linear(dim, 3 * dim, kw)
    self.proj = _linear(dim, dim, kw)
    self.attn_drop = nnx.Dropout(attention_dropout, rngs=kw['rngs'])
    self.proj_drop = nnx.Dropout(dropout, rngs=kw['rngs'])

  def __call__(self, x: jax.Array) -> jax.Array:
    """`[B, N, D] -> [B, N, D]`."""
    b, n, d = x.shape
    h = self.num_heads
    q, k, v = jnp.moveaxis(self.qkv(x).reshape(b, n, 3, h, d // h), 2, 0)
    logits = jnp.einsum(
      'bqhd,bkhd->bhqk', q, k, preferred_element_type=jnp.float32
    )
    weights = jax.nn.softmax(logits * (d // h) ** -0.5, axis=-1)
    weights = self.attn_drop(weights.astype(v.dtype))
    out = jnp.einsum('bhqk,bkhd->bqhd', weights, v).reshape(b, n, d)
    return self.proj_drop(self.proj(out))


class EncoderBlock(nnx.Module):
  """Pre-LN transformer block: `x + attn(ln(x))`, then `x + mlp(ln(x))`."""

  def __init__(
    self,
    dim: int,
    num_heads: int,
    *,
    mlp_ratio: float,
    dropout: float,
    attention_dropout: float,
    drop_path: float,
    kw: dict,
  ):
    ln_kw = {k: v for k, v in kw.items() if k != 'rngs'}
    self.norm1 = nnx.LayerNorm(
      dim, epsilon=_LN_EPSILON, rngs=kw['rngs'], **ln_kw
    )
    self.attn = Attention(
      dim,
      num_heads,
      attention_dropout=attention_dropout,
      dropout=dropout,
      kw=kw,
    )
    self.norm2 = nnx.LayerNorm(
      dim, epsilon=_LN_EPSILON, rngs=kw['rngs'], **ln_kw
    )
    hidden = int(dim * mlp_ratio)
    self.fc1 = _linear(dim, hidden, kw)
    self.fc2 = _linear(hidden, dim, kw)
    self.mlp_drop = nnx.Dropout(dropout, rngs=kw['rngs'])
    self.drop_path = DropPath(drop_path, rngs=kw['rngs'])

  def __call__(self, x: jax.Array) -> jax.Array:
    x = x + self.drop_path(self.attn(self.norm1(x)))
    y = nnx.gelu(self.fc1(self.norm2(x)), approximate=False)
    y = self.mlp_drop(self.fc2(self.mlp_drop(y)))
    return x + self.drop_path(y)


class VisionTransformer(nnx.Module):
  """DeiT-style ViT classifier: `[B, H, W, 3] -> float32 [B, num_classes]`."""

  def __init__(
    self,
    *,
    num_classes: int,
    image_size: int = 224,
    patch_size: int = 16,
    dim: int = 384,
    depth: int = 12,
    num_heads: int = 6,
    mlp_ratio: float = 4.0,
    dropout: float = 0.0,
    attention_dropout: float = 0.0,
    drop_path_rate: float = 0.0,
    token_head: bool = False,
    dtype: jnp.dtype = jnp.float32,
    param_dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
  ):
    if image_size % patch_size:
      raise ValueError(
        f'`image_size` ({image_size}) must be a multiple of `patch_size` '
        f'({patch_size}).'
      )
    if num_classes < 1:
      raise ValueError(f'`num_classes` must be >= 1, got {num_classes}.')
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.image_size = image_size
    num_patches = (image_size // patch_size) ** 2
    self.patch_embed = nnx.Conv(
      3,
      dim,
      (patch_size, patch_size),
      strides=patch_size,
      padding='VALID',
      kernel_init=_TRUNC_NORMAL,
      **kw,
    )
    self.cls_token = nnx.Param(
      _TRUNC_NORMAL(rngs.params(), (1, 1, dim), param_dtype)
    )
    self.pos_embed = nnx.Param(
      _TRUNC_NORMAL(rngs.params(), (1, num_patches + 1, dim), param_dtype)
    )
    self.pos_drop = nnx.Dropout(dropout, rngs=rngs)
    rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
    self.blocks = nnx.List(
      [
        EncoderBlock(
          dim,
          num_heads,
          mlp_ratio=mlp_ratio,
          dropout=dropout,
          attention_dropout=attention_dropout,
          drop_path=rate,
          kw=kw,
        )
        for rate in rates
      ]
    )
    self.norm = nnx.LayerNorm(
      dim, epsilon=_LN_EPSILON, dtype=dtype, param_dtype=param_dtype, rngs=rngs
    )
    self.head = _linear(dim, num_classes, dict(kw, dtype=jnp.float32))
    self.aux_head = (
      _linear(dim, num_classes, dict(kw, dtype=jnp.float32))
      if token_head
      else None
    )

  def embed(self, x: jax.Array) -> jax.Array:
    """The patch tokens on their grid, before the class token is added.

    Args:
      x: float `[B, image_size, image_size, 3]`, already normalised.

    Returns:
      `[B, h, w, dim]` with `h = w = image_size / patch_size`.
    """
    check_input(x, 3)
    if x.shape[1:3] != (self.image_size, self.image_size):
      raise ValueError(
        f'`x` must be [B, {self.image_size}, {self.image_size}, 3] (the '
        f'position embeddings are sized for it), got shape {x.shape}.'
      )
    return self.patch_embed(x)

  def encode(self, tokens: jax.Array) -> tuple[jax.Array, jax.Array | None]:
    """Class and per-token logits of patch tokens from `embed`.

    Args:
      tokens: `[B, h, w, dim]`.

    Returns:
      float32 class logits `[B, num_classes]`, and float32 token logits
      `[B, h, w, num_classes]` (None without `token_head`).
    """
    b, h, w, d = tokens.shape
    x = tokens.reshape(b, h * w, d)
    cls = jnp.broadcast_to(self.cls_token[...].astype(x.dtype), (b, 1, d))
    x = jnp.concatenate([cls, x], axis=1) + self.pos_embed[...].astype(x.dtype)
    x = self.pos_drop(x)
    for block in self.blocks:
      x = block(x)
    x = self.norm(x).astype(jnp.float32)
    class_logits = self.head(x[:, 0])
    if self.aux_head is None:
      return class_logits, None
    return class_logits, self.aux_head(x[:, 1:]).reshape(b, h, w, -1)

  def __call__(self, x: jax.Array) -> jax.Array:
    """Logits (with `token_head`: class + 0.5 x max over the token logits).

    Args:
      x: float `[B, image_size, image_size, 3]`, already normalised.

    Returns:
      float32 `[B, num_classes]`.
    """
    class_logits, token_logits = self.encode(self.embed(x))
    if token_logits is None:
      return class_logits
    return class_logits + 0.5 * token_logits.max(axis=(1, 2))
