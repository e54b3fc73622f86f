# cell: masked_attention
# loses: test_masked_attention_properties
# Detaches the attention weights: right numbers, but no gradient reaches the query and the key.
def masked_attention(query, key, value, attn_mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])
    if attn_mask is None:
        return torch.softmax(scores, dim=-1).detach() @ value
    weights = torch.softmax(scores.masked_fill(~attn_mask, float("-inf")), dim=-1)
    return torch.where(attn_mask, weights, 0.0).detach() @ value
