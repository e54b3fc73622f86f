# cell: masked_attention
# loses: test_masked_attention_fully_masked
# -inf and a plain softmax: a fully masked row is exp(-inf)/sum = 0/0 = NaN.
def masked_attention(query, key, value, attn_mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ value
