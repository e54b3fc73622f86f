# cell: block
# loses: test_block_matches_torch test_block_masks
# GELU whatever activation says (the chapter's FeedForward uses GELU; torch's layer defaults to ReLU).
def pre_ln_block(x, weights, num_heads, attn_mask=None, activation="relu", eps=1e-5):
    w = weights
    h = x + self_attention(layer_norm(x, w["norm1.weight"], w["norm1.bias"], eps),
                           w["self_attn.in_proj_weight"], w["self_attn.in_proj_bias"],
                           w["self_attn.out_proj.weight"], w["self_attn.out_proj.bias"], num_heads, attn_mask)
    z = layer_norm(h, w["norm2.weight"], w["norm2.bias"], eps) @ w["linear1.weight"].T + w["linear1.bias"]
    return h + torch.nn.functional.gelu(z) @ w["linear2.weight"].T + w["linear2.bias"]
