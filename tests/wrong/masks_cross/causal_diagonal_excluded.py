# cell: causal_mask
# loses: test_causal_mask
# Off by one: tril(-1) hides the diagonal, so a token cannot attend to itself (row 0 sees nothing).
def causal_mask(L: int, S: int, *, device=None) -> torch.Tensor:
    return torch.ones(L, S, dtype=torch.bool, device=device).tril(diagonal=-1)
