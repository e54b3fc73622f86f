# cell: causal_mask
# Compare a column of query indices with a row of key indices.
def causal_mask(L: int, S: int, *, device=None) -> torch.Tensor:
    i = torch.arange(L, device=device).unsqueeze(1)  # (L, 1)
    j = torch.arange(S, device=device).unsqueeze(0)  # (1, S)
    return j <= i
