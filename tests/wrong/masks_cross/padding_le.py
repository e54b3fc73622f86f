# cell: padding_mask
# loses: test_padding_mask
# Off by one: `<=` keeps one padding token per sequence (and a zero length keeps one key).
def padding_mask(lengths: torch.Tensor, S: int) -> torch.Tensor:
    return torch.arange(S, device=lengths.device) <= lengths[:, None]
