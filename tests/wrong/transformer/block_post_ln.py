# cell: block
# loses: test_block_matches_torch test_block_masks
# Post-LN (the original Transformer's order): normalises after each residual sum.
def pre_ln_block(x, weights, num_heads, attn_mask=None, activation="relu", eps=1e-5):
    w = weights
    a = self_attention(x, w["self_attn.in_proj_weight"], w["self_attn.in_proj_bias"],
                       w["self_attn.out_proj.weight"], w["self_attn.out_proj.bias"], num_heads, attn_mask)
    h = layer_norm(x + a, w["norm1.weight"], w["norm1.bias"], eps)
    z = h @ w["linear1.weight"].T + w["linear1.bias"]
    z = torch.relu(z) if activation == "relu" else torch.nn.functional.gelu(z)
    return layer_norm(h + z @ w["linear2.weight"].T + w["linear2.bias"], w["norm2.weight"], w["norm2.bias"], eps)
