r"""Additive attention, the score of Bahdanau et al. (2014) (taught in chapter "Why attention").

Bahdanau, Cho and Bengio (arXiv:1409.0473, appendix A.1.2) score a decoder state ``q_i``
against an encoder state ``k_j`` with a one-hidden-layer network:

.. math::
    e_{ij} = v^\top \tanh(W_q q_i + W_k k_j), \qquad
    \alpha_{ij} = \operatorname{softmax}_j(e_{ij}), \qquad
    c_i = \textstyle\sum_j \alpha_{ij} v_j

Luong et al. (2015, arXiv:1508.04025) call it the "concat" score. Unlike the dot product it
lets queries and keys have different widths and learns what "similar" means, at the cost of
an ``(..., L, S, A)`` intermediate (``A`` the score network's width) instead of one matmul.

Shapes: ``...`` batch, ``L`` queries, ``S`` keys, ``Dq``/``Dk`` query/key features,
``Ev`` value features, ``A`` the score network's hidden width.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .softmax import softmax


class AdditiveAttention(nn.Module):
    """Bahdanau's additive attention: ``softmax_j(v^T tanh(W_q q_i + W_k k_j)) @ V``.

    Args:
        query_dim: ``Dq``. key_dim: ``Dk``. hidden: ``A``, the score network's width.
        device, dtype: where and how the parameters are created.

    Taught in: chapter "Why attention: the RNN bottleneck".
    """

    def __init__(
        self,
        query_dim: int,
        key_dim: int,
        hidden: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.w_query = nn.Linear(query_dim, hidden, bias=False, **kw)
        self.w_key = nn.Linear(key_dim, hidden, bias=True, **kw)  # the one bias of the sum
        self.v = nn.Linear(hidden, 1, bias=False, **kw)

    def scores(self, query: Tensor, key: Tensor) -> Tensor:
        """``e_ij``: query ``(..., L, Dq)``, key ``(..., S, Dk)`` -> ``(..., L, S)``."""
        if query.size(-1) != self.w_query.in_features or key.size(-1) != self.w_key.in_features:
            raise ValueError(
                f"AdditiveAttention: query must be (..., L, {self.w_query.in_features}) and key "
                f"(..., S, {self.w_key.in_features}), got {tuple(query.shape)}, {tuple(key.shape)}"
            )
        q = self.w_query(query).unsqueeze(-2)  # (..., L, 1, A)
        k = self.w_key(key).unsqueeze(-3)  # (..., 1, S, A)
        return self.v(torch.tanh(q + k)).squeeze(-1)  # (..., L, S)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attn_mask: Tensor | None = None,
        *,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend: ``(output (..., L, Ev), weights (..., L, S) or None)``.

        ``attn_mask`` follows ``scaled_dot_product_attention``: bool ``True`` = may attend,
        or a float mask added to the scores; a fully masked row gives zero weights.
        """
        scores = self.scores(query, key)  # (..., L, S)
        if attn_mask is not None and attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        elif attn_mask is not None:
            scores = scores + attn_mask
        weights = softmax(scores, dim=-1)  # (..., L, S)
        return weights @ value, (weights if need_weights else None)  # (..., L, Ev)
