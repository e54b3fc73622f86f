# cell: block
# Attention written out with einsum and an additive float mask (-inf where attending is not allowed), F.linear.
import torch.nn.functional as F


def pre_ln_block(x, weights, num_heads, attn_mask=None, activation="relu", eps=1e-5):
    w = weights
    B, T, d = x.shape
    E = d // num_heads
    h = layer_norm(x, w["norm1.weight"], w["norm1.bias"], eps)
    q, k, v = F.linear(h, w["self_attn.in_proj_weight"], w["self_attn.in_proj_bias"]).split(d, dim=-1)
    q, k, v = (t.reshape(B, T, num_heads, E) for t in (q, k, v))  # (B, T, H, E)
    scores = torch.einsum("bthe,bshe->bhts", q, k) / E ** 0.5
    if attn_mask is not None:
        additive = torch.zeros(attn_mask.shape, dtype=x.dtype).masked_fill(~attn_mask, float("-inf"))
        scores = scores + additive
    heads = torch.einsum("bhts,bshe->bthe", scores.softmax(-1), v).reshape(B, T, d)
    x = x + F.linear(heads, w["self_attn.out_proj.weight"], w["self_attn.out_proj.bias"])
    act = {"relu": F.relu, "gelu": F.gelu}[activation]
    z = act(F.linear(layer_norm(x, w["norm2.weight"], w["norm2.bias"], eps), w["linear1.weight"], w["linear1.bias"]))
    return x + F.linear(z, w["linear2.weight"], w["linear2.bias"])
