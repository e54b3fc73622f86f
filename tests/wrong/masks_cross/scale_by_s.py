# cell: masked_attention
# loses: test_masked_attention_matches_torch test_masked_attention_fully_masked test_masked_attention_implemented
# Scales by sqrt of the number of keys S instead of the feature size E (equal only when S == E).
def masked_attention(query, key, value, attn_mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(key.shape[-2])
    if attn_mask is None:
        return torch.softmax(scores, dim=-1) @ value
    weights = torch.softmax(scores.masked_fill(~attn_mask, float("-inf")), dim=-1)
    return torch.where(attn_mask, weights, 0.0) @ value
