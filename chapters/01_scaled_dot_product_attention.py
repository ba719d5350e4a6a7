# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 1 — Scaled dot-product attention
#
# A video is a sequence of frames. Give every frame a feature vector and you have a
# sequence of **tokens**; attention lets every frame look at every other frame and decide,
# with weights that sum to one, what to borrow from each. This chapter builds that
# operation from its formula, proves each design decision in it, and ends with
# multi-head attention.
#
# ## Learning objectives
# After this chapter you can
# 1. compute $\operatorname{softmax}(QK^\top/\sqrt{d_k})\,V$ by hand and read each row of the
#    attention matrix as a distribution over frames;
# 2. derive why the logits are divided by $\sqrt{d_k}$ (and not $d_k$);
# 3. derive the softmax Jacobian $\operatorname{diag}(p) - pp^\top$ and explain why a saturated
#    softmax starves its logits (hence $W_Q$, $W_K$) of gradient while the values still learn;
# 4. explain why subtracting the row maximum before `exp` is exact, not an approximation;
# 5. show that multi-head attention is $h$ single-head attentions concatenated and mixed by
#    $W_O$, and that it costs the same as one head of full width — and measure it.
#
# Every claim below is checked by code: a derivation goes through `vidlearn.derive`, a tensor
# identity through `check_identity`, a measurement through an `assert`. If a claim were
# wrong, this notebook would stop with an error.

# %%
import math

import matplotlib.pyplot as plt
import sympy as sp
import torch
import torch.nn.functional as F

from vidlearn import derivations
from vidlearn.attention import MultiHeadAttention, scaled_dot_product_attention, softmax
from vidlearn.derive import check_identity
from vidlearn.flops import count_flops, evaluate, mha_macs

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)  # exact comparisons below; the library works in any float dtype

# %% [markdown]
# ## 1. Frames as tokens
#
# We start with a toy clip of $T = 8$ frames. The first four frames show one scene, the last
# four another (a cut), so frames of the same scene have similar features. Each frame is a
# vector of width $D = 16$; stacked, the clip is a $(T, D)$ matrix $X$.
#
# Attention maps $X$ to queries, keys and values, $Q = XW_Q$, $K = XW_K$, $V = XW_V$, and
# computes
#
# $$\operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right)V .$$
#
# Row $t$ of $A = \operatorname{softmax}(QK^\top/\sqrt{d_k})$ says how much frame $t$ takes from
# each frame $s$: $A_{ts} \ge 0$ and $\sum_s A_{ts} = 1$.

# %%
T, D = 8, 16
scene_a, scene_b = torch.randn(D), torch.randn(D)
X = torch.stack([scene_a if t < 4 else scene_b for t in range(T)]) + 0.3 * torch.randn(T, D)  # (T, D)

# With W_Q = W_K = W_V = I the similarity structure of the frames is visible directly.
Q, K, V = X, X, X
out, A = scaled_dot_product_attention(Q, K, V, return_weights=True)  # (T, D), (T, T)

assert A.shape == (T, T)
assert torch.all(A >= 0) and torch.allclose(A.sum(-1), torch.ones(T)), "each row is a distribution over frames"
# each frame puts most of its weight on frames of its own scene
same_scene = torch.tensor([[(t < 4) == (s < 4) for s in range(T)] for t in range(T)])
own_scene_mass = (A * same_scene).sum(-1)
assert torch.all(own_scene_mass > 0.5)
print("weight each frame puts on its own scene:", own_scene_mass.numpy().round(3))

# %% mystnb={"image": {"alt": "Heat map of the attention weights A_ts, query frame t against key frame s, with a colour bar; the weights change at the cut after frame 3."}}
fig, ax = plt.subplots(figsize=(4, 3.4))
im = ax.imshow(A.numpy(), cmap="viridis", vmin=0)
ax.set_xlabel("key frame s")
ax.set_ylabel("query frame t")
ax.set_title("attention weights $A_{ts}$ (a cut after frame 3)")
fig.colorbar(im, ax=ax)
plt.show()

# %% [markdown]
# ### The formula, from scratch, equals the library and torch
#
# Written out, scaled dot-product attention is three lines. We prove that this teaching
# version, the library's from-scratch path, the library's fast path and PyTorch's fused
# `F.scaled_dot_product_attention` agree to $10^{-10}$ on random batched inputs of odd sizes.

# %%
def attention_from_scratch(q, k, v):
    logits = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., L_q, L_k)
    weights = torch.exp(logits - logits.amax(-1, keepdim=True))
    return (weights / weights.sum(-1, keepdim=True)) @ v  # (..., L_q, d_v)


shapes = [(2, 3, 7, 5), (2, 3, 9, 5), (2, 3, 9, 6)]  # q (B, h, L_q, d_k), k (B, h, L_k, d_k), v (B, h, L_k, d_v)
for name, impl in [
    ("library, from scratch", lambda q, k, v: scaled_dot_product_attention(q, k, v)),
    ("library, fast path", lambda q, k, v: scaled_dot_product_attention(q, k, v, fast=True)),
    ("torch F.scaled_dot_product_attention", F.scaled_dot_product_attention),
]:
    r = check_identity(attention_from_scratch, impl, shapes=shapes, name=f"from scratch == {name}")
    print(r.message)
    r.raise_if_failed()

# %% [markdown]
# ## 2. Why divide by $\sqrt{d_k}$?
#
# Suppose the components of $q$ and $k$ are independent with mean 0 and variance 1. Then the
# logit $q\cdot k = \sum_{i=1}^{d_k} q_i k_i$ has variance $d_k$: the wider the heads, the larger
# the logits, and (section 3) the flatter the gradients. We derive this for general means
# $\mu$ and variances $\sigma^2$, then specialise. The first line is $E[X^2] - (E X)^2$ with
# $E[q_i q_j] = \mu_q^2 + \sigma_q^2\delta_{ij}$.

# %%
derivations.get("ch01.dot_product_variance").verify()

# %% [markdown]
# The first step (collapsing the double sum over $i, j$) is about sums with a symbolic bound
# $d_k$, which sympy cannot simplify on its own; the checker therefore verified it at random
# points (integer $d_k$, random $\mu$, $\sigma$) — see "numeric" above. As an independent
# check, `sympy.stats` computes the variance of $q_1k_1 + q_2k_2$ for Gaussian components
# exactly, and it must equal our general expression at $d_k = 2$:

# %%
from sympy.stats import Normal, variance  # noqa: E402

mu_q, mu_k = sp.symbols("mu_q mu_k", real=True)
s_q, s_k = sp.symbols("sigma_q sigma_k", positive=True)
q_rv = [Normal(f"q{i}", mu_q, s_q) for i in range(2)]
k_rv = [Normal(f"k{i}", mu_k, s_k) for i in range(2)]
exact = variance(q_rv[0] * k_rv[0] + q_rv[1] * k_rv[1])
ours = derivations.get("ch01.dot_product_variance").steps[1][0]  # d_k (σ_q²σ_k² + σ_q²μ_k² + μ_q²σ_k²)
ours_at_2 = ours.subs(sp.Symbol("d_k", positive=True, integer=True), 2)
assert sp.simplify(exact - ours_at_2) == 0  # the same symbols (names and assumptions) on both sides
print("sympy.stats agrees at d_k = 2:", sp.factor(exact))

# %% [markdown]
# And a Monte Carlo check with standard-normal components: the sample variance of $q\cdot k$
# tracks $d_k$, and of $q\cdot k/\sqrt{d_k}$ stays at 1.

# %%
gen = torch.Generator().manual_seed(1)
n = 100_000
print(f"{'d_k':>5} {'Var(q·k)':>10} {'Var(q·k/√d_k)':>14}")
for d_k in (4, 16, 64, 256):
    q = torch.randn(n, d_k, generator=gen, dtype=torch.float32)
    k = torch.randn(n, d_k, generator=gen, dtype=torch.float32)
    dots = (q * k).sum(-1)
    v_raw, v_scaled = dots.var().item(), (dots / math.sqrt(d_k)).var().item()
    print(f"{d_k:>5} {v_raw:>10.2f} {v_scaled:>14.3f}")
    assert abs(v_raw / d_k - 1) < 0.03 and abs(v_scaled - 1) < 0.03

derivations.get("ch01.scaled_logit_variance").verify()

# %% [markdown]
# Dividing by $d_k$ instead would shrink the variance to $1/d_k$: logits near zero and an almost
# uniform softmax, whatever the content. $\sqrt{d_k}$ is exactly the factor that keeps unit variance.
#
# ## 3. The softmax Jacobian, and why saturation starves the logits
#
# With $p = \operatorname{softmax}(z)$, the derivative of $p_i$ with respect to $z_j$ is
# $p_i\delta_{ij} - p_ip_j$. We check it for three logits, symbolically:

# %%
derivations.get("ch01.softmax_jacobian").verify()

# %% [markdown]
# The same identity for any number of logits, numerically, against autograd:

# %%
def jacobian_autograd(z):
    return torch.autograd.functional.jacobian(lambda x: softmax(x), z)


def jacobian_formula(z):
    p = softmax(z)
    return torch.diag(p) - torch.outer(p, p)


check_identity(jacobian_autograd, jacobian_formula, shapes=[(11,)], name="J = diag(p) − ppᵀ").raise_if_failed()

# %% [markdown]
# Every row of $J$ sums to zero — adding the same constant to all logits does not change the
# output (section 4 uses this):

# %%
derivations.get("ch01.softmax_jacobian_rows").verify()

# %% [markdown]
# When one logit dominates, $p$ approaches a one-hot vector $e_m$ and
# $J = \operatorname{diag}(e_m) - e_me_m^\top = 0$: no gradient reaches the logits. Unscaled logits
# with large $d_k$ are exactly that situation. Below we scale a fixed random logit vector by $s$
# and measure $\lVert J \rVert_F$.

# %% mystnb={"image": {"alt": "Log-log plot of the Frobenius norm of the softmax Jacobian against the logit scale s: the norm falls towards zero as the softmax saturates."}}
z0 = torch.randn(8, generator=torch.Generator().manual_seed(2))
scales = torch.logspace(-1, 2.5, 40)
jac_norms = torch.stack([jacobian_formula(s * z0).norm() for s in scales])

fig, ax = plt.subplots(figsize=(5, 3))
ax.loglog(scales, jac_norms)
ax.set_xlabel("logit scale s")
ax.set_ylabel(r"$\|\partial p/\partial z\|_F$")
ax.set_title("a saturated softmax passes back (almost) no gradient")
plt.show()

assert jac_norms[-1] < 1e-6 * jac_norms.max(), "at large scale the Jacobian vanishes"
print(f"‖J‖ at s = {scales[0]:.1f}: {jac_norms[0]:.3f};  at s = {scales[-1]:.0f}: {jac_norms[-1]:.2e}")

# %% [markdown]
# The same thing for attention: with $d_k = 512$ and unit-variance components, unscaled logits
# have standard deviation $\sqrt{512} \approx 23$, and most rows are nearly one-hot.

# %%
d_k, L = 512, 16
q, k = torch.randn(L, d_k, generator=gen), torch.randn(L, d_k, generator=gen)
for label, scale in [("unscaled", 1.0), ("scaled by 1/√d_k", 1 / math.sqrt(d_k))]:
    p = softmax(q @ k.T * scale)  # (L, L)
    grad = torch.stack([jacobian_formula(row).norm() for row in q @ k.T * scale]).mean()
    print(f"{label:>18}: mean max weight {p.max(-1).values.mean():.3f}, mean ‖J‖ {grad:.2e}")
p_raw, p_scaled = softmax(q @ k.T), softmax(q @ k.T / math.sqrt(d_k))
assert p_raw.max(-1).values.mean() > 0.9 > p_scaled.max(-1).values.mean()

# %% [markdown]
# What exactly loses its gradient? Only what sits *before* the softmax. The output $pV$ depends on
# $V$ through $p$ itself, so a one-hot row still passes the full gradient to the value it picked;
# it is the logits $z = qk^\top$, and through them $W_Q$ and $W_K$, that are starved. Below, a
# squared-error loss on the attention output, unscaled and scaled: unscaled, the median row passes
# less than a fifth of the gradient to its logits that a scaled row does, and the rows whose
# largest weight exceeds 0.9999 pass less than a thousandth of it; the gradient reaching $V$ is no
# smaller than with scaling.
#
# *Correction.* Two of the course's source tutorials (seed 000, line 25; seed 004, line 124) say
# the $\sqrt{d_k}$ scaling "prevents vanishing gradients". That is loose: it keeps the logits at
# unit variance (section 2) so that the softmax does not saturate; saturation starves the logits
# of gradient, not the whole model (see the errata table in the README).

# %%
v0, target = torch.randn(L, d_k, generator=gen), torch.randn(L, d_k, generator=gen)
grads = {}
for label, scale in [("unscaled", 1.0), ("scaled by 1/√d_k", 1 / math.sqrt(d_k))]:
    z = (q @ k.T * scale).requires_grad_()  # (L, L) logits
    v = v0.clone().requires_grad_()  # (L, d_k)
    p = softmax(z)
    loss = ((p @ v - target) ** 2).sum()
    g_z, g_v = torch.autograd.grad(loss, (z, v))
    grads[label] = (p.detach(), g_z.norm(dim=-1), g_v.norm())
    print(f"{label:>18}: ‖∂loss/∂z‖ per row, median {g_z.norm(dim=-1).median():.3g};  ‖∂loss/∂V‖ {g_v.norm():.3g}")
p_raw, g_rows, g_v_raw = grads["unscaled"]
_, g_rows_scaled, g_v_scaled = grads["scaled by 1/√d_k"]
saturated = p_raw.max(-1).values > 0.9999  # (L,) rows that are one-hot to four decimals
print(f"unscaled: {int(saturated.sum())} rows with a weight > 0.9999, largest logit gradient there "
      f"{g_rows[saturated].max():.2g} (scaled rows: median {g_rows_scaled.median():.3g})")
assert saturated.any()
assert g_rows.median() < g_rows_scaled.median() / 5
assert g_rows[saturated].max() < g_rows_scaled.median() / 1000, "saturated rows starve their logits"
assert g_v_raw >= g_v_scaled, "the values' gradient does not vanish"

# %% [markdown]
# ## 4. Shift invariance: why subtracting the maximum is exact
#
# `exp(100)` overflows float32 (its limit is about $3.4\times10^{38} \approx e^{88.7}$), and
# $\infty/\infty$ is NaN. Every real implementation subtracts the row maximum first. That is not a
# numerical trick that changes the answer: softmax is invariant to adding a constant to all
# logits.

# %%
derivations.get("ch01.softmax_shift_invariance").verify()

# %%
z = torch.tensor([100.0, 101.0, 99.0], dtype=torch.float32)
naive = torch.exp(z) / torch.exp(z).sum()
stable = softmax(z)
print("naive :", naive)
print("stable:", stable)
assert torch.isnan(naive).all()
assert torch.allclose(stable, torch.softmax(z.double(), -1).float())
assert torch.allclose(softmax(z), softmax(z - 100.0)), "shifting every logit changes nothing"

# %% [markdown]
# ## 5. Multi-head attention
#
# One attention pattern per layer is limiting: a frame may want to look at the previous frame
# *and* at every frame with the same object. Multi-head attention runs $h$ attentions of width
# $d/h$ side by side, each with its own slice of the projections, concatenates their outputs and
# mixes them with $W_O$:
#
# $$\operatorname{MHA}(X) = \operatorname{concat}(\text{head}_1, \dots, \text{head}_h)\,W_O,\qquad
# \text{head}_i = \operatorname{Attention}(XW_Q^{(i)}, XW_K^{(i)}, XW_V^{(i)}).$$
#
# The library's `MultiHeadAttention` does this with one `d × d` projection per role and an
# einops reshape `b l (h e) -> b h l e`. We prove it equals the explicit loop over heads.

# %%
d_model, n_heads, B, L = 24, 4, 2, 9
mha = MultiHeadAttention(d_model, n_heads)


def heads_one_by_one(x):
    e = d_model // n_heads
    outs = []
    for i in range(n_heads):
        rows = slice(i * e, (i + 1) * e)  # head i owns these output channels of W_Q, W_K, W_V
        q = x @ mha.w_q.weight[rows].T + mha.w_q.bias[rows]
        k = x @ mha.w_k.weight[rows].T + mha.w_k.bias[rows]
        v = x @ mha.w_v.weight[rows].T + mha.w_v.bias[rows]
        outs.append(attention_from_scratch(q, k, v))  # (B, L, e)
    return mha.w_o(torch.cat(outs, dim=-1))  # (B, L, d)


with torch.no_grad():
    r = check_identity(mha, heads_one_by_one, shapes=[(B, L, d_model)], name="MHA == concat of single heads, then W_O")
print(r.message)
r.raise_if_failed()

# and it equals torch's nn.MultiheadAttention with the same weights
torch_mha = torch.nn.MultiheadAttention(d_model, n_heads, batch_first=True)
with torch.no_grad():
    torch_mha.in_proj_weight.copy_(torch.cat([mha.w_q.weight, mha.w_k.weight, mha.w_v.weight]))
    torch_mha.in_proj_bias.copy_(torch.cat([mha.w_q.bias, mha.w_k.bias, mha.w_v.bias]))
    torch_mha.out_proj.weight.copy_(mha.w_o.weight)
    torch_mha.out_proj.bias.copy_(mha.w_o.bias)
    check_identity(
        mha, lambda x: torch_mha(x, x, x, need_weights=False)[0], shapes=[(B, L, d_model)], name="== nn.MultiheadAttention"
    ).raise_if_failed()

# %% [markdown]
# ### What do heads cost?
#
# Count multiply-accumulates (MACs) for $N$ tokens of width $d$. The four projections cost
# $N d^2$ each. Each head computes $QK^\top$ ($N \cdot N \cdot d/h$) and weights·$V$ (the same),
# and there are $h$ heads:

# %%
derivations.get("ch01.multihead_cost").verify()

# %% [markdown]
# Splitting into heads is free: $4Nd^2 + 2N^2d$ for any $h$. Now let PyTorch count.
# `torch.utils.flop_counter.FlopCounterMode` counts **2 FLOPs per MAC**. One trap: on the CPU,
# `F.scaled_dot_product_attention` (which our fast path calls) runs a fused kernel that the
# counter does not know, and it is counted as **zero**. Forcing the MATH backend makes the
# counter see the two matrix products.

# %%
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

N, d = 64, 32
x = torch.randn(1, N, d)
formula = mha_macs()  # a sympy expression in N, d, h
print("MACs formula:", formula)
print(f"{'h':>3} {'formula FLOPs':>14} {'counted (MATH)':>15} {'counted (default CPU)':>22}")
for h in (1, 2, 4, 8):
    layer = MultiHeadAttention(d, h)
    expected = 2 * evaluate(formula, N=N, d=d, h=h)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        layer(x)
    measured_math = counter.get_total_flops()
    measured_default = count_flops(layer, x, force_math=False)
    print(f"{h:>3} {expected:>14,} {measured_math:>15,} {measured_default:>22,}")
    assert measured_math == expected == count_flops(layer, x)
    # the fused CPU kernel is invisible to the counter: only the four projections are counted
    assert measured_default == 2 * 4 * N * d * d

# %% [markdown]
# Same count for every $h$, and the formula is exact. (Elementwise work — the softmax, the
# scaling, bias adds — is not in the counter's tally; it is $O(N^2 h)$ and $O(Nd)$, small next to
# the matrix products.)
#
# Finally, what the heads look at. Each head has its own attention pattern over the frames of our
# toy clip (random weights here: the patterns become meaningful once the model is trained, in
# later chapters).

# %% mystnb={"image": {"alt": "Four heat maps side by side, one per attention head, of the weights of query frames (rows) over key frames (columns)."}}
mha_small = MultiHeadAttention(D, 4)
with torch.no_grad():
    _, W = mha_small(X, return_weights=True)  # (h, T, T) for an unbatched clip
fig, axes = plt.subplots(1, 4, figsize=(11, 2.8))
for i, ax in enumerate(axes):
    ax.imshow(W[i].numpy(), cmap="viridis", vmin=0)
    ax.set_title(f"head {i}")
    ax.set_xlabel("key frame")
axes[0].set_ylabel("query frame")
plt.show()
assert torch.allclose(W.sum(-1), torch.ones(4, T))

# %% [markdown]
# ## Exercises
#
# Open `exercises/ex01_attention.py`. You will write a stable `softmax`, scaled dot-product
# attention with masks, the head split and merge, and the derivation of $\operatorname{Var}(q\cdot k)$
# step by step; `check(...)` in the notebook tells you at once what is wrong.
#
# ## Summary
#
# - Attention gives each token (frame) a weighted average of the values; each row of the
#   attention matrix is a probability distribution over frames.
# - $\operatorname{Var}(q\cdot k) = d_k$ for independent unit-variance components; dividing by
#   $\sqrt{d_k}$ restores unit variance (dividing by $d_k$ would over-shrink).
# - $\partial p/\partial z = \operatorname{diag}(p) - pp^\top$ vanishes as softmax saturates:
#   unscaled logits starve the *logits* (so $W_Q$, $W_K$) of gradient; the values still get theirs.
# - Softmax is shift invariant, so subtracting the row maximum is exact and prevents overflow.
# - Multi-head attention equals $h$ single-head attentions concatenated then mixed by $W_O$, and
#   costs $4Nd^2 + 2N^2d$ MACs whatever $h$ — confirmed by torch's FLOP counter (with the MATH
#   backend forced on the CPU).
