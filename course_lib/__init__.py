"""course_lib: the shared library of the attention course.

Every function here is taught in a chapter of the book (its docstring names which) and is
device- and dtype-agnostic: pass CUDA tensors and it runs on the GPU.
"""

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
from .rnn import (
    Seq2SeqGRU,
    context_sensitivity,
    seq2seq_batch,
    sequence_accuracy,
    train_seq2seq,
)
from .softmax import logsumexp, softmax

__all__ = [
    "MultiHeadAttention",
    "Seq2SeqGRU",
    "attention_scores",
    "attention_weights",
    "causal_mask",
    "combine_masks",
    "context_sensitivity",
    "get_device",
    "key_mask_to_attn_mask",
    "logsumexp",
    "padding_mask",
    "scaled_dot_product_attention",
    "seq2seq_batch",
    "sequence_accuracy",
    "softmax",
    "to_additive_mask",
    "train_seq2seq",
]
__version__ = "0.1.0"
