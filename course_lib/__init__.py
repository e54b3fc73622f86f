"""course_lib: the shared library of the attention course.

Every function here is taught in a chapter of the book (its docstring names which) and is
device- and dtype-agnostic: pass CUDA tensors and it runs on the GPU.
"""

from . import bert, configs, cross, explorer, heads, toy
from .additive import AdditiveAttention
from .attention import attention_scores, attention_weights, scaled_dot_product_attention
from .bert import BertModel, load_minilm
from .device import get_device
from .efficient import chunked_attention, tiled_attention
from .gpt import GPT, CharTokenizer, GPTConfig, sample_next
from .heads import (
    argmax_offset_fraction,
    attention_entropy,
    head_roles,
    next_token_score,
    offset_score,
    prefix_matching_score,
    previous_token_score,
    special_token_mass,
)
from .kvcache import KVCache, decode_step, kv_cache_bytes
from .masks import (
    causal_mask,
    combine_masks,
    key_mask_to_attn_mask,
    padding_mask,
    to_additive_mask,
)
from .multihead import MultiHeadAttention
from .positional import (
    LearnedPositionalEmbedding,
    apply_rope,
    rope_frequencies,
    sinusoidal_encoding,
)
from .rnn import (
    Seq2SeqGRU,
    accuracy_by_length,
    context_sensitivity,
    seq2seq_batch,
    sequence_accuracy,
    train_seq2seq,
)
from .scaling import (
    SoftmaxResponse,
    dot_product_variance,
    entropy,
    random_qkv,
    softmax_response,
)
from .softmax import (
    log_softmax,
    logsumexp,
    online_logsumexp,
    online_softmax,
    softmax,
    softmax_jacobian,
)
from .transformer import FeedForward, TransformerBlock

__all__ = [
    "AdditiveAttention",
    "BertModel",
    "CharTokenizer",
    "FeedForward",
    "GPT",
    "GPTConfig",
    "KVCache",
    "LearnedPositionalEmbedding",
    "MultiHeadAttention",
    "Seq2SeqGRU",
    "SoftmaxResponse",
    "TransformerBlock",
    "accuracy_by_length",
    "apply_rope",
    "argmax_offset_fraction",
    "attention_entropy",
    "attention_scores",
    "attention_weights",
    "bert",
    "causal_mask",
    "chunked_attention",
    "combine_masks",
    "configs",
    "context_sensitivity",
    "cross",
    "decode_step",
    "dot_product_variance",
    "entropy",
    "explorer",
    "get_device",
    "head_roles",
    "heads",
    "key_mask_to_attn_mask",
    "kv_cache_bytes",
    "load_minilm",
    "log_softmax",
    "logsumexp",
    "next_token_score",
    "offset_score",
    "online_logsumexp",
    "online_softmax",
    "padding_mask",
    "prefix_matching_score",
    "previous_token_score",
    "random_qkv",
    "rope_frequencies",
    "scaled_dot_product_attention",
    "seq2seq_batch",
    "sample_next",
    "sequence_accuracy",
    "sinusoidal_encoding",
    "softmax",
    "softmax_jacobian",
    "softmax_response",
    "special_token_mass",
    "tiled_attention",
    "to_additive_mask",
    "toy",
    "train_seq2seq",
]
__version__ = "0.1.0"
