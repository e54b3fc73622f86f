# cell: accuracy
# loses: test_accuracy_padding
# Per-token accuracy as the mean of the per-sequence accuracies: short sequences weigh as
# much as long ones, which is not (right real tokens) / (real tokens).
def accuracy(pred, target, valid=None):
    if valid is None:
        valid = torch.ones_like(target, dtype=torch.bool)
    right = (pred == target) & valid
    exact = (right | ~valid).all(dim=-1).double().mean()
    token = (right.sum(-1).double() / valid.sum(-1)).mean()
    return float(exact), float(token)
