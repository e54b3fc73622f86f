# cell: rope
# The chapter's complex numbers: pair (x_i, x_{i+E/2}) is z_i, multiplied by e^{i angle}; angles in x's dtype.
def rope(x, positions, base=10000.0):
    E = x.shape[-1]
    if E % 2:
        raise ValueError("RoPE needs an even head dim")
    theta = base ** (-torch.arange(0, E, 2, dtype=x.dtype, device=x.device) / E)  # (E/2,)
    angle = positions.to(x.dtype)[:, None] * theta  # (T, E/2)
    z = torch.complex(x[..., : E // 2], x[..., E // 2 :])  # (..., T, E/2)
    z = z * torch.polar(torch.ones_like(angle), angle)
    return torch.cat((z.real, z.imag), dim=-1)
