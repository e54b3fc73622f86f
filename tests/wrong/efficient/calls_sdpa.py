# cell: tiled_attention
# loses: test_tiled_implemented test_tiled_never_builds_scores
# Delegates to torch: not the student's implementation, and on the CPU torch's kernel builds the L x S matrix.
def tiled_attention(query, key, value, block_size=16, is_causal=False):
    import torch.nn.functional as F
    return F.scaled_dot_product_attention(query, key, value, is_causal=is_causal)
