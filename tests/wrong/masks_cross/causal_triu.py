# cell: causal_mask
# loses: test_causal_mask
# triu instead of tril: every query sees the future and not the past.
def causal_mask(L: int, S: int, *, device=None) -> torch.Tensor:
    return torch.ones(L, S, dtype=torch.bool, device=device).triu()
