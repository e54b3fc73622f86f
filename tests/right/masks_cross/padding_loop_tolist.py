# cell: padding_mask
# A Python loop over the lengths' values, the mask built from a list on lengths' device.
def padding_mask(lengths: torch.Tensor, S: int) -> torch.Tensor:
    rows = [[j < n for j in range(S)] for n in lengths.tolist()]
    return torch.tensor(rows, dtype=torch.bool, device=lengths.device).reshape(len(rows), S)
