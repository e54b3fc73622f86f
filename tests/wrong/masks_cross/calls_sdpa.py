# cell: masked_attention
# loses: test_masked_attention_implemented
# Delegates to torch: correct numbers, but not the student's implementation.
def masked_attention(query, key, value, attn_mask=None):
    import torch.nn.functional as F
    return F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask)
