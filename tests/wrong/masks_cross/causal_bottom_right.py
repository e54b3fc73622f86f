# cell: causal_mask
# loses: test_causal_mask
# Aligns the diagonal bottom-right (the KV-cache variant), not top-left like is_causal=True.
def causal_mask(L: int, S: int, *, device=None) -> torch.Tensor:
    return torch.ones(L, S, dtype=torch.bool, device=device).tril(diagonal=S - L)
