# cell: masked_attention
# loses: test_masked_attention_fully_masked
# -1e9 instead of -inf and no zeroing: a fully masked row gets uniform weights, not zeros.
def masked_attention(query, key, value, attn_mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, -1e9)
    return torch.softmax(scores, dim=-1) @ value
