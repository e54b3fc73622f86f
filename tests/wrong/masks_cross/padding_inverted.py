# cell: padding_mask
# loses: test_padding_mask
# Inverted convention: True marks the padding (what nn.MultiheadAttention's key_padding_mask wants).
def padding_mask(lengths: torch.Tensor, S: int) -> torch.Tensor:
    return torch.arange(S, device=lengths.device) >= lengths[:, None]
