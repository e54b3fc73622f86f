# cell: attend
# loses: test_attend_implemented
# Right answer, but delegated to torch's fused attention.
def attend(state, enc, mask=None):
    q = state.unsqueeze(-2)  # (..., 1, d)
    m = None if mask is None else mask.unsqueeze(-2)  # (..., 1, S)
    context = torch.nn.functional.scaled_dot_product_attention(q, enc, enc, attn_mask=m)
    scores = (q @ enc.transpose(-2, -1)).squeeze(-2) / math.sqrt(state.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return context.squeeze(-2), torch.softmax(scores, dim=-1)
