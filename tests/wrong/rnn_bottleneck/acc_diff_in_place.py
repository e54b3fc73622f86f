# cell: accuracy
# loses: test_accuracy_no_padding test_accuracy_padding
# Compares with pred.sub_(target) == 0 to save a tensor: right numbers, but the caller's pred is overwritten.
def accuracy(pred, target, valid=None):
    if valid is None:
        valid = torch.ones_like(target, dtype=torch.bool)
    right = (pred.sub_(target) == 0) & valid
    exact = (right | ~valid).all(dim=-1).to(torch.float64).mean()
    return float(exact), float(right.sum().to(torch.float64) / valid.sum())
