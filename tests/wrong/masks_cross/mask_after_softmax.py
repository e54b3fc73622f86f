# cell: masked_attention
# loses: test_masked_attention_matches_torch test_masked_attention_fully_masked test_masked_attention_implemented
# Masks the weights after the softmax: the remaining weights no longer sum to 1.
def masked_attention(query, key, value, attn_mask=None):
    weights = torch.softmax(query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1]), dim=-1)
    if attn_mask is not None:
        weights = weights * attn_mask
    return weights @ value
