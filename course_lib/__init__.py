"""course_lib: the shared library of the attention course.

Every function here is taught in a chapter of the book (its docstring names which) and is
device- and dtype-agnostic: pass CUDA tensors and it runs on the GPU.
"""

from . import toy
from .attention import attention_scores, attention_weights, scaled_dot_product_attention
from .device import get_device
from .masks import (
    causal_mask,
    combine_masks,
    key_mask_to_attn_mask,
    padding_mask,
    to_additive_mask,
)
from .multihead import MultiHeadAttention
from .scaling import (
    SoftmaxResponse,
    dot_product_variance,
    entropy,
    random_qkv,
    softmax_jacobian,
    softmax_response,
)
from .softmax import logsumexp, softmax

__all__ = [
    "MultiHeadAttention",
    "SoftmaxResponse",
    "attention_scores",
    "attention_weights",
    "causal_mask",
    "combine_masks",
    "dot_product_variance",
    "entropy",
    "get_device",
    "key_mask_to_attn_mask",
    "logsumexp",
    "padding_mask",
    "random_qkv",
    "scaled_dot_product_attention",
    "softmax",
    "softmax_jacobian",
    "softmax_response",
    "to_additive_mask",
    "toy",
]
__version__ = "0.1.0"
