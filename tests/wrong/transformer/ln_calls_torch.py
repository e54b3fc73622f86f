# cell: layer_norm
# loses: test_implemented
# Right numbers, but torch's LayerNorm does the work.
def layer_norm(x, weight, bias, eps=1e-5):
    return torch.nn.functional.layer_norm(x, x.shape[-1:], weight, bias, eps)
