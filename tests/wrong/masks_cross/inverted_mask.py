# cell: masked_attention
# loses: test_masked_attention_matches_torch test_masked_attention_fully_masked test_masked_attention_implemented
# Inverted convention: treats True as "masked out" and hides the keys the query may see.
def masked_attention(query, key, value, attn_mask=None):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])
    if attn_mask is not None:
        scores = scores.masked_fill(attn_mask, float("-inf"))
        weights = torch.where(attn_mask, 0.0, torch.softmax(scores, dim=-1))
    else:
        weights = torch.softmax(scores, dim=-1)
    return weights @ value
