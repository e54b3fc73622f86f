# cell: padding_mask
# loses: test_padding_mask
# Builds the positions on the default device: a mask for lengths on a GPU fails (or lands on the CPU).
def padding_mask(lengths: torch.Tensor, S: int) -> torch.Tensor:
    return torch.arange(S) < lengths[:, None]
