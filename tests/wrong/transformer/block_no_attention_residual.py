# cell: block
# loses: test_block_matches_torch test_block_masks
# Forgets the residual around attention: h = attn(ln1(x)) instead of x + attn(ln1(x)).
def pre_ln_block(x, weights, num_heads, attn_mask=None, activation="relu", eps=1e-5):
    w = weights
    h = self_attention(layer_norm(x, w["norm1.weight"], w["norm1.bias"], eps),
                       w["self_attn.in_proj_weight"], w["self_attn.in_proj_bias"],
                       w["self_attn.out_proj.weight"], w["self_attn.out_proj.bias"], num_heads, attn_mask)
    z = layer_norm(h, w["norm2.weight"], w["norm2.bias"], eps) @ w["linear1.weight"].T + w["linear1.bias"]
    z = torch.relu(z) if activation == "relu" else torch.nn.functional.gelu(z)
    return h + z @ w["linear2.weight"].T + w["linear2.bias"]
