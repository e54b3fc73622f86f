# cell: padding_mask
# loses: test_padding_mask
# Adds the key axis to lengths in place (unsqueeze_): right mask, but the caller's lengths become (B, 1).
def padding_mask(lengths: torch.Tensor, S: int) -> torch.Tensor:
    lengths.unsqueeze_(-1)
    return torch.arange(S, device=lengths.device) < lengths
