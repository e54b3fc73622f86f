# cell: masked_attention
# loses: test_masked_attention_properties
# Scales the query in place: the caller's tensor is changed.
def masked_attention(query, key, value, attn_mask=None):
    query.div_(math.sqrt(query.shape[-1]))
    scores = query @ key.transpose(-2, -1)
    if attn_mask is None:
        return torch.softmax(scores, dim=-1) @ value
    weights = torch.softmax(scores.masked_fill(~attn_mask, float("-inf")), dim=-1)
    return torch.where(attn_mask, weights, 0.0) @ value
