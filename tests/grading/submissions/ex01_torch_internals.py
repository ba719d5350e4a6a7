# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   vidlearn:
#     exercise: ex01
# ---

# %% [markdown]
# Adversarial fixture: torch's own Python implementations of softmax and attention
#
# softmax is torch._refs.softmax (a Python composition of primitive ops, no softmax kernel);
# attention is flex_attention, after replacing torch._safe_softmax (which its eager path calls) by
# the decomposition table's softmax. Those are all tripwires in the sealed worker.
#
# Expected scores (softmax, attention, split_heads, merge_heads, var_qk): 0, 0, 1, 1, 2


# %%
import math

import torch

from vidlearn.grading import case, check, hint  # noqa: F401

# %%
# @vidlearn-honest-answers@


# %%
def softmax(x, dim=-1):
    import torch._refs

    return torch.nan_to_num(torch._refs.softmax(x, dim), nan=0.0)


def scaled_dot_product_attention(q, k, v, mask=None):
    from torch._decomp import decomposition_table
    from torch.nn.attention.flex_attention import flex_attention

    decomposed = decomposition_table[torch.ops.aten._softmax.default]
    torch._safe_softmax = lambda x, dim, dtype=None: torch.nan_to_num(decomposed(x, dim, False), nan=0.0)
    q4, k4, v4 = (t.reshape(-1, 1, *t.shape[-2:]) for t in (q, k, v))
    if mask is None:
        out = flex_attention(q4, k4, v4)
    else:
        m = mask.reshape(-1, *mask.shape[-2:])

        def bias(score, b, h, i, j):
            return torch.where(m[b % m.shape[0], i, j], score, -float("inf"))

        out = flex_attention(q4, k4, v4, score_mod=bias)
    return out.reshape(*q.shape[:-1], v.shape[-1])
