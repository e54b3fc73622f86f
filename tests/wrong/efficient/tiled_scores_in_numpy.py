# cell: tiled_attention
# loses: test_tiled_never_builds_scores test_tiled_properties
# Builds the whole score matrix in NumPy, where a torch dispatch mode cannot see it (the
# visible allocation check passes); the memory it takes still shows from outside the
# process. NumPy also cuts the gradients.
import numpy as np


def tiled_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                    block_size: int = 16, is_causal: bool = False) -> torch.Tensor:
    q, k, v = (t.detach().cpu().double().numpy() for t in (query, key, value))
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if is_causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], dtype=bool)), s, -np.inf)
    w = np.exp(s - s.max(-1, keepdims=True))
    w = w / w.sum(-1, keepdims=True)
    return torch.from_numpy(w @ v).to(query.dtype)
