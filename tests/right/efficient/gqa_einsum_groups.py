# cell: gqa_attention
# The group as its own axis in einsum (no broadcast copy: einsum folds it into the rows).
def gqa_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    B, H, T, E = query.shape
    Hkv, S = key.shape[1], key.shape[2]
    q = query.view(B, Hkv, H // Hkv, T, E)  # (B, Hkv, G, T, E)
    s = torch.einsum("bhgte,bhse->bhgts", q, key) / math.sqrt(E)
    allowed = torch.ones(T, S, dtype=torch.bool, device=query.device).tril(diagonal=S - T)
    w = torch.softmax(torch.where(allowed, s, float("-inf")), dim=-1)
    return torch.einsum("bhgts,bhsv->bhgtv", w, value).reshape(B, H, T, value.shape[-1])
