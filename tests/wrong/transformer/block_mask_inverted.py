# cell: block
# loses: test_block_masks
# Inverts the mask as torch's src_mask would need (True = masked): the course's True means may attend.
def pre_ln_block(x, weights, num_heads, attn_mask=None, activation="relu", eps=1e-5):
    w = weights
    mask = None if attn_mask is None else ~attn_mask
    h = x + self_attention(layer_norm(x, w["norm1.weight"], w["norm1.bias"], eps),
                           w["self_attn.in_proj_weight"], w["self_attn.in_proj_bias"],
                           w["self_attn.out_proj.weight"], w["self_attn.out_proj.bias"], num_heads, mask)
    z = layer_norm(h, w["norm2.weight"], w["norm2.bias"], eps) @ w["linear1.weight"].T + w["linear1.bias"]
    z = torch.relu(z) if activation == "relu" else torch.nn.functional.gelu(z)
    return h + z @ w["linear2.weight"].T + w["linear2.bias"]
