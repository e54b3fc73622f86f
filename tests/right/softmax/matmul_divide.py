# cell: attention
# Divides by sqrt(E) (when no scale is given) instead of multiplying, `torch.matmul` and `mT`.
import math


def attention_weights(query: torch.Tensor, key: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    scores = torch.matmul(query, key.mT)
    scores = scores / math.sqrt(query.shape[-1]) if scale is None else scores * scale
    return softmax(scores, dim=-1)


def scaled_dot_product_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None = None
) -> torch.Tensor:
    return torch.matmul(attention_weights(query, key, scale=scale), value)
