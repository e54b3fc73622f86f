# cell: causal_mask
# loses: test_causal_mask
# Right values, but the mask is always created on the default device.
def causal_mask(L: int, S: int, *, device=None) -> torch.Tensor:
    return torch.ones(L, S, dtype=torch.bool).tril()
