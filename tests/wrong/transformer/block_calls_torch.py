# cell: block
# loses: test_implemented
# Right numbers, but torch's own encoder layer, loaded with the weights, does the work.
def pre_ln_block(x, weights, num_heads, attn_mask=None, activation="relu", eps=1e-5):
    d_model, d_ff = x.shape[-1], weights["linear1.weight"].shape[0]
    layer = torch.nn.TransformerEncoderLayer(d_model, num_heads, d_ff, dropout=0.0, activation=activation,
                                             layer_norm_eps=eps, batch_first=True, norm_first=True, dtype=x.dtype)
    layer.load_state_dict(weights)
    B, T, _ = x.shape
    mask = None if attn_mask is None else ~attn_mask.expand(B, num_heads, T, T).reshape(B * num_heads, T, T)
    with torch.no_grad():
        return layer(x, src_mask=mask)
