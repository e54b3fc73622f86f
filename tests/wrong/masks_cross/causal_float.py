# cell: causal_mask
# loses: test_causal_mask
# A 0/1 float mask: torch would *add* it to the scores instead of masking.
def causal_mask(L: int, S: int, *, device=None) -> torch.Tensor:
    return torch.ones(L, S, device=device).tril()
