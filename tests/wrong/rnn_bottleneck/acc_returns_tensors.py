# cell: accuracy
# loses: test_accuracy_no_padding
# Right numbers, but 0-d tensors instead of Python floats.
def accuracy(pred, target, valid=None):
    if valid is None:
        valid = torch.ones_like(target, dtype=torch.bool)
    right = (pred == target) & valid
    exact = (right | ~valid).all(dim=-1).double().mean()
    return exact, right.sum().double() / valid.sum()
