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
# # Chapter 3 — Masks, temporal attention and the transformer block
#
# Frames are tokens; now time gets a direction. This chapter builds attention *along time*:
# which frames may look at which (masks), how a causal model can run one frame at a time
# (a key/value cache), how clips of different lengths share a batch (padding), and how far
# convolutions and attention reach in time. Then it assembles the **transformer block** that
# every later model is made of (residual stream, LayerNorm, MLP, pre-LN or post-LN), turns a
# frame into tokens (patches and a [class] token), and uses all of it to explain how X-CLIP lets
# frames talk cheaply through *message tokens*. Tutorials usually assert these things ("a causal
# mask keeps the future out", "pre-LN is more stable"); here each one is proved or measured on
# real tensors, and what is only the literature's claim is labelled as such.
#
# ## Learning objectives
# After this chapter you can
# 1. build causal and padding masks in the course's convention (True = may attend), combine
#    them, and explain why a row that is `-inf` everywhere gives NaN;
# 2. prove with a full Jacobian that a causal layer's output at frame $t$ does not depend on any
#    frame $s > t$;
# 3. run causal attention one frame at a time with a key/value cache, show it equals the full
#    masked computation, and count one step's cost, $4d^2 + 2(t+1)d$ multiply-accumulates;
# 4. derive how many layers of temporal convolution the last frame needs to see the first, and
#    why one attention layer is enough;
# 5. write down a transformer block (residual stream, LayerNorm, MLP), derive LayerNorm's
#    Jacobian and what it cannot see, compare GELU with CLIP's QuickGELU, and say what pre-LN
#    and post-LN change, measured at initialisation;
# 6. cut a frame into patch tokens, prepend a [class] token, and check the shapes;
# 7. explain X-CLIP's cross-frame communication (message tokens, cross-frame fusion attention,
#    intra-frame diffusion attention) with its tensor shapes, and say by how much it is cheaper
#    than joint space-time attention: in attention scores, and for the whole block.

# %%
import math

import einops
import matplotlib.pyplot as plt
import torch
from torch import nn

from vidlearn import derivations
from vidlearn.attention import softmax
from vidlearn.derive import check_identity
from vidlearn.flops import block_macs, count_flops, cross_frame_macs, evaluate, mha_macs
from vidlearn.masks import causal_mask, combine_masks, padding_mask
from vidlearn.blocks import QuickGELU, ResidualAttentionBlock, layer_norm_jacobian
from vidlearn.temporal import CrossFrameAttention, TemporalAttention
from vidlearn.tubelets import tubelet_tokens

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)
# every tensor here is tiny: splitting each operation across threads costs more than it saves
# (measured on a busy 2-core machine: §6.4's depth study took 0.3 s on one thread, 8 s on two)
torch.set_num_threads(1)

# %% [markdown]
# ## 1. Masks: who may look at whom
#
# A mask says, for every (query frame $t$, key frame $s$) pair, whether $t$ may attend to $s$.
# The course uses one convention everywhere — **boolean, True = may attend** — the same as
# `torch.nn.functional.scaled_dot_product_attention` (and the opposite of `nn.MultiheadAttention`,
# where True means *blocked*). A **causal** mask lets frame $t$ see frames $s \le t$; a **padding**
# mask hides the frames that only pad a short clip to the batch length. Masks combine with AND.

# %%
T = 6
causal = causal_mask(T)  # (T, T)
padding = padding_mask([6, 4], T)  # (B, 1, T): the second clip has 4 real frames
both = combine_masks(causal, padding)  # (B, T, T)
print(causal.int())
print(both[1].int())
assert torch.equal(causal, torch.tril(torch.ones(T, T, dtype=torch.bool)))
assert not both[1, :, 4:].any(), "nobody attends to the padded frames of clip 2"
derivations.get("ch03.causal_pairs").verify()
assert causal.sum() == T * (T + 1) // 2

# %% [markdown]
# Blocked pairs get logit $-\infty$, so $e^{-\infty} = 0$ weight. But a query whose keys are
# **all** blocked (it happens: a padded query row under a padding-and-causal mask of a clip with
# zero real frames, or a causal mask shifted by one) has a row of $-\infty$: the stable softmax
# subtracts the row maximum, $-\infty - (-\infty) = \text{NaN}$, and the NaN spreads to every later
# layer and every gradient. The library's softmax returns zeros for such a row instead.

# %%
row = torch.full((1, 4), float("-inf"))
print("torch.softmax:", torch.softmax(row, -1))
print("vidlearn     :", softmax(row, -1))
assert torch.isnan(torch.softmax(row, -1)).all() and torch.equal(softmax(row, -1), torch.zeros(1, 4))

# %% [markdown]
# ## 2. A causal layer cannot see the future — proved with the full Jacobian
#
# `TemporalAttention` is multi-head self-attention over the frame features $(B, T, D)$ of a clip,
# with a temporal positional encoding (sinusoidal here). With `causal=True` the claim is: for
# every pair $s > t$, $\partial\,\text{out}_t / \partial x_s = 0$ — exactly, not approximately. We
# compute the whole Jacobian $J \in \mathbb{R}^{T\times D\times T\times D}$ with autograd and look
# at the norm of each $D\times D$ block.

# %% mystnb={"image": {"alt": "Two black-and-white maps of which input frames s each output frame t depends on: bidirectional (every cell black) and causal (black on and below the diagonal only)."}}
T, D = 8, 16
x = torch.randn(1, T, D)


def jacobian_blocks(layer):
    J = torch.autograd.functional.jacobian(lambda inp: layer(inp)[0], x)[:, :, 0]  # (T, D, T, D)
    return J.pow(2).sum(dim=(1, 3)).sqrt()  # (T, T): ‖∂out_t/∂x_s‖


causal_layer = TemporalAttention(D, 4, causal=True)
bidirectional = TemporalAttention(D, 4, causal=False)
blocks_causal, blocks_bi = jacobian_blocks(causal_layer), jacobian_blocks(bidirectional)
future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # s > t
assert torch.all(blocks_causal[future] == 0), "no gradient path from any future frame"
assert torch.all(blocks_causal[~future] > 0), "and every past frame does matter"
assert torch.all(blocks_bi > 0), "a bidirectional layer depends on every frame"
print("largest ‖∂out_t/∂x_s‖ over s > t:", blocks_causal[future].max().item())

fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
for ax, blocks, title in [(axes[0], blocks_bi, "bidirectional"), (axes[1], blocks_causal, "causal")]:
    ax.imshow((blocks > 0).numpy(), cmap="Greys", vmin=0, vmax=1)  # black = depends
    ax.set_title(f"{title}: ∂out_t/∂x_s ≠ 0")
    ax.set_xlabel("input frame s")
    ax.set_ylabel("output frame t")
plt.show()

# %% mystnb={"image": {"alt": "Two heat maps of head 0's attention weights, query frame t against key frame s: bidirectional, and causal, where every weight above the diagonal is zero."}}
with torch.no_grad():
    _, w_bi = bidirectional(x, return_weights=True)  # (B, h, T, T)
    _, w_causal = causal_layer(x, return_weights=True)
fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
for ax, w, title in [(axes[0], w_bi, "bidirectional"), (axes[1], w_causal, "causal")]:
    ax.imshow(w[0, 0].numpy(), cmap="viridis", vmin=0)
    ax.set_title(f"{title} attention weights (head 0)")
    ax.set_xlabel("key frame s")
    ax.set_ylabel("query frame t")
plt.show()
assert torch.all(w_causal[..., future] == 0) and torch.allclose(w_causal.sum(-1), torch.ones(1, 4, T))

# %% [markdown]
# ## 3. One frame at a time: the key/value cache
#
# A causal model that generates or processes a stream can compute frame $t$'s output as soon
# as frame $t$ arrives: its query needs the keys and values of frames $1..t$ only, and those of
# frames $1..t-1$ did not change. Keeping them in a **cache** (append the new frame's key and
# value, attend with the new query) avoids recomputing them. We prove that stepping through the
# clip with `TemporalAttention.step` gives exactly the full masked computation, then count what
# one step costs.

# %%
def incremental(clip):
    cache = causal_layer.empty_cache(clip.shape[0], dtype=clip.dtype)
    outs = []
    for t in range(clip.shape[1]):
        out_t, cache = causal_layer.step(clip[:, t], cache)  # (B, D); the cache grows by one frame
        outs.append(out_t)
    assert cache.length == clip.shape[1]
    return torch.stack(outs, dim=1)  # (B, T, D)


with torch.no_grad():
    check_identity(causal_layer, incremental, shapes=[(3, 10, D)], name="KV-cache steps == full causal pass").raise_if_failed()
print("incremental decoding with a KV cache equals the full causal computation")

# %% [markdown]
# **What one step costs.** With $t$ frames in the cache and width $d$, one step computes, per
# clip: the new frame's query, key and value ($3d^2$ multiply-accumulates, MACs), its $t+1$
# scores ($(t+1)d$ in all, whatever the number of heads), the weighted sum of $t+1$ values
# ($(t+1)d$) and the output projection ($d^2$):
#
# $$\text{MACs}_\text{step}(t) = 4d^2 + 2(t+1)d = O(d^2 + t\,d).$$
#
# The $d^2$ term does not go away: for a cache shorter than $2d - 1$ frames the projections cost
# more than the attention itself. What the cache saves is re-projecting the $t$ earlier frames'
# keys and values, $2t\,d^2$ MACs (one query against $t+1$ freshly projected keys is
# `mha_macs(1, t + 1)`); recomputing the whole masked pass over $t+1$ frames would cost
# `mha_macs(t + 1)`, quadratic in $t$. We count the step with torch's FLOP counter (2 FLOPs per
# MAC) at a few cache lengths.

# %%
def step_macs(t, d):
    return 4 * d * d + 2 * (t + 1) * d  # Q, K, V, output projections + scores and weighted sum over t + 1 keys


print(f"{'t':>3} {'counted MACs':>13} {'4d² + 2(t+1)d':>14} {'no cache':>9} {'full pass':>10}")
for t in (0, 1, 7, 31, 63):
    cache = causal_layer.empty_cache(1, dtype=x.dtype)
    with torch.no_grad():
        for _ in range(t):
            _, cache = causal_layer.step(torch.randn(1, D), cache)  # (1, D) per frame
    counted = count_flops(causal_layer.step, torch.randn(1, D), cache) // 2
    no_cache, full = int(mha_macs(1, t + 1, D, 4)), int(mha_macs(t + 1, t + 1, D, 4))
    print(f"{t:>3} {counted:>13,} {step_macs(t, D):>14,} {no_cache:>9,} {full:>10,}")
    assert counted == step_macs(t, D) and no_cache - counted == 2 * t * D * D
assert 4 * D * D == 2 * (31 + 1) * D  # at t + 1 = 2d (here t = 31) projections and attention cost the same

# %% [markdown]
# ## 4. Clips of different lengths: padding changes nothing
#
# To batch a 10-frame clip with a 6-frame one, pad the short clip with 4 frames of anything and
# hide them with a padding mask. The claim: the outputs for the real frames are exactly those of
# the short clip on its own, whatever the padding contains.

# %%
short, long_ = torch.randn(1, 6, D), torch.randn(1, 10, D)
for fill in (torch.zeros(1, 4, D), 1e3 * torch.randn(1, 4, D)):
    batch = torch.cat([long_, torch.cat([short, fill], dim=1)])  # (2, 10, D)
    with torch.no_grad():
        out = bidirectional(batch, lengths=[10, 6])
        alone = bidirectional(short)
        assert torch.allclose(out[1, :6], alone[0], atol=1e-12), "padded frames leak into real ones"
        assert torch.allclose(out[0], bidirectional(long_)[0], atol=1e-12)
print("padding, zeros or huge noise, changes no real frame's output")

# %% [markdown]
# ## 5. How far does one layer reach in time?
#
# A temporal convolution of kernel 3 mixes each frame with its neighbours. How many layers does
# the **last** frame's output need before it depends on the **first** frame? It depends on the
# convolution:
#
# - a **causal** convolution (taps $t, t-1, t-2$) reaches $k-1 = 2$ frames further back per layer;
# - a **centred** convolution (taps $t-1, t, t+1$) reaches only one frame back per layer.

# %%
derivations.get("ch03.causal_conv_reach").verify()
derivations.get("ch03.centred_conv_reach").verify()

# %% [markdown]
# So the last frame sees the first after $\lceil (T-1)/2 \rceil$ causal layers but $T-1$ centred
# layers (with centred convolutions it is the *middle* frame that sees everything after
# $\lceil (T-1)/2\rceil$ layers — a distinction tutorials often blur). Attention reaches every frame
# in **one** layer. We confirm all three by gradients, for every $T$ from 2 to 16: stack layers
# until $\partial\,\text{out}_{T-1}/\partial x_0 \ne 0$.

# %%
def layers_needed(make_layer, T, max_layers=20):
    x = torch.randn(1, T, D, requires_grad=True)
    torch.manual_seed(T)
    layers = []
    for n in range(1, max_layers + 1):
        layers.append(make_layer())
        h = x
        for layer in layers:
            h = layer(h)
        (grad,) = torch.autograd.grad(h[0, -1].sum(), x)
        if grad[0, 0].abs().sum() > 0:
            return n
    return None


class TemporalConv(nn.Module):
    """Kernel-3 convolution over time on (B, T, D) features, causal or centred, then tanh."""

    def __init__(self, causal):
        super().__init__()
        self.causal, self.conv = causal, nn.Conv1d(D, D, kernel_size=3)

    def forward(self, h):
        h = h.transpose(1, 2)  # (B, D, T)
        h = nn.functional.pad(h, (2, 0) if self.causal else (1, 1))  # keep T frames
        return torch.tanh(self.conv(h)).transpose(1, 2)  # (B, T, D)


print(f"{'T':>3} {'causal conv':>12} {'⌈(T−1)/2⌉':>10} {'centred conv':>13} {'attention':>10}")
for T_ in range(2, 17):
    n_causal = layers_needed(lambda: TemporalConv(causal=True), T_)
    n_centred = layers_needed(lambda: TemporalConv(causal=False), T_)
    n_attn = layers_needed(lambda: TemporalAttention(D, 4), T_)
    print(f"{T_:>3} {n_causal:>12} {math.ceil((T_ - 1) / 2):>10} {n_centred:>13} {n_attn:>10}")
    assert n_causal == math.ceil((T_ - 1) / 2) and n_centred == T_ - 1 and n_attn == 1

# %% [markdown]
# Reaching is not the same as modelling well — a deep stack of convolutions can model long
# dependencies too — but the count is exact: with attention, any frame can use any other in one
# step, and the path length between two frames does not grow with their distance.
#
# ## 6. The transformer block
#
# Attention moves information *between* tokens. A model is a stack of **blocks**, each of which
# adds two things to every token: what attention gathered from the other tokens, and what a
# small network applied to each token on its own (the MLP) computes from it. The later models are
# stacks of this block — ViT-style frame encoders such as CLIP's, the ViViT variants of chapter 5,
# the single-stream encoder and VideoBERT of chapter 6 — and X-CLIP's block (§7 below) is this block
# with message tokens added. (Chapter 4 only makes tokens; it has no blocks.)
# `vidlearn.blocks.ResidualAttentionBlock` implements it, in the two variants of §6.4.
#
# ### 6.1 The residual stream
#
# Write the $L$ tokens of a sequence as $x \in \mathbb{R}^{L\times d}$. A block does not replace
# $x$, it adds to it:
#
# $$x \leftarrow x + \text{attn}(\text{LN}_1(x)), \qquad x \leftarrow x + \text{MLP}(\text{LN}_2(x)).$$
#
# $x$ is the **residual stream**: each sublayer reads it (through a LayerNorm, §6.2) and writes a
# correction into it. Why: the derivative of $x + F(x)$ is $I + \partial F/\partial x$, so through a
# stack of blocks the gradient of the loss reaches every block's input along an identity path,
# besides the paths through the sublayers; a stack that *replaced* $x$ by $F(x)$ would multiply
# the gradient by every block's $\partial F/\partial x$ in turn. With its two sublayers silenced
# (their last linear maps zeroed) the block is exactly the identity, and so is its Jacobian.

# %%
block = ResidualAttentionBlock(D, 4)  # pre-LN, as in CLIP; (B, L, D) -> (B, L, D)
h = torch.randn(2, 5, D)  # (B, L, D)
assert block(h).shape == h.shape
with torch.no_grad():
    for param in list(block.attn.w_o.parameters()) + list(block.mlp[2].parameters()):
        param.zero_()
    assert torch.equal(block(h), h)
J_block = torch.autograd.functional.jacobian(block, h[:1]).reshape(5 * D, 5 * D)  # (L·D, L·D)
assert torch.equal(J_block, torch.eye(5 * D)), "only the identity path is left"

# %% [markdown]
# ### 6.2 LayerNorm
#
# LayerNorm normalises each token on its own, over its $d$ features (not over the batch, as
# BatchNorm does, and not over the tokens):
#
# $$\mu = \frac1d\sum_j x_j,\qquad \sigma^2 = \frac1d\sum_j (x_j-\mu)^2,\qquad
# \hat x = \frac{x-\mu}{\sqrt{\sigma^2+\varepsilon}},\qquad \text{LN}(x) = \gamma\odot\hat x + \beta,$$
#
# with learned $\gamma, \beta\in\mathbb{R}^d$ (initialised to 1 and 0: the affine is the identity at
# initialisation) and a small $\varepsilon$ ($10^{-5}$ in torch) against division by zero. The
# variance is the *biased* one ($1/d$, not $1/(d-1)$). With $\varepsilon = 0$, $\hat x$ has mean 0
# and variance 1, for every $d$:

# %%
derivations.get("ch03.layernorm_moments").verify()

ln = nn.LayerNorm(D, elementwise_affine=False, eps=0.0)  # x̂ itself: no affine, no ε


def layer_norm_by_hand(x):  # x (..., D)
    mu = x.mean(-1, keepdim=True)  # (..., 1)
    sigma = (x - mu).pow(2).mean(-1, keepdim=True).sqrt()  # (..., 1): biased
    return (x - mu) / sigma


check_identity(ln, layer_norm_by_hand, shapes=[(3, 7, D)], name="nn.LayerNorm == (x − μ)/σ").raise_if_failed()
tokens = ln(torch.randn(3, 7, D))  # (B, L, D)
assert torch.allclose(tokens.mean(-1), torch.zeros(3, 7), atol=1e-12)
assert torch.allclose(tokens.pow(2).mean(-1), torch.ones(3, 7), atol=1e-12)

# %% [markdown]
# What can a sublayer behind a LayerNorm *not* see? Its Jacobian answers. Derived entry by entry
# for a token of $d = 3$ values (any $d$ is the same computation with more entries), then applied
# to the two directions it kills, for any $d$:

# %%
derivations.get("ch03.layernorm_jacobian").verify()
derivations.get("ch03.layernorm_null_space").verify()

# %% [markdown]
# So $J = (I - \mathbf{1}\mathbf{1}^\top/d - \hat x\hat x^\top/d)/\sigma$ maps $\mathbf 1$ and $\hat x$ to
# zero: to first order, adding the same constant to every feature of a token, or scaling the
# token about its mean, changes nothing. Both in fact hold exactly: $\hat x$ of $a x + c\mathbf 1$
# with $a > 0$ is $\hat x$ of $x$, since $\mu \to a\mu + c$ and $\sigma \to a\sigma$. Nothing else
# is lost: $J$ has rank $d - 2$. We check the closed form (`vidlearn.blocks.layer_norm_jacobian`)
# against autograd through torch's own `nn.LayerNorm`, then the null space, the rank and the
# exact invariance:

# %%
autograd_jacobian = torch.vmap(torch.func.jacrev(ln))  # (n, D) -> (n, D, D), one Jacobian per token
check_identity(autograd_jacobian, layer_norm_jacobian, shapes=[(6, D)], name="LayerNorm Jacobian").raise_if_failed()
tok = torch.randn(6, D)  # six tokens
J_ln = layer_norm_jacobian(tok)  # (6, D, D)
assert torch.allclose(J_ln @ torch.ones(D), torch.zeros(6, D), atol=1e-12)
assert torch.allclose((J_ln @ ln(tok)[..., None])[..., 0], torch.zeros(6, D), atol=1e-12)
assert torch.linalg.matrix_rank(J_ln).tolist() == [D - 2] * 6
check_identity(
    lambda x, log_a, c: ln(log_a.exp() * x + c),  # (6, D): each token scaled by its own a > 0 and shifted
    lambda x, log_a, c: ln(x),
    shapes=[(6, D), (6, 1), (6, 1)],
    name="LN(a·x + c) == LN(x) for a > 0",
).raise_if_failed()

# %% [markdown]
# For the block this means: a sublayer sees the *direction* of each centred token, never its size
# or offset. The size is not thrown away, though: it stays in the residual stream, which the
# sublayers add to but do not normalise (in the pre-LN block; §6.4 is about the other one).
#
# ### 6.3 The MLP: $d \to m \to d$, GELU and QuickGELU
#
# The MLP applies one two-layer network to every token separately,
# $\text{MLP}(x) = W_2\,\phi(W_1 x + b_1) + b_2$ with $W_1\in\mathbb{R}^{m\times d}$,
# $W_2\in\mathbb{R}^{d\times m}$ and, almost always, $m = 4d$. Attention mixes tokens; the MLP
# transforms each one on its own (so permuting the tokens commutes with it), and holds two thirds
# of the block's parameters: $2dm + m + d = 8d^2 + 5d$ against attention's $4d^2 + 4d$ and the two
# LayerNorms' $4d$. At ViT-B's width $d = 768$ that is 4,722,432 against 2,362,368 and 3,072.

# %%
mlp = ResidualAttentionBlock(D, 4).mlp  # a fresh one: §6.1's block has its last layer zeroed
perm = torch.randperm(7)
with torch.no_grad():
    check_identity(lambda x: mlp(x)[:, perm], lambda x: mlp(x[:, perm]), shapes=[(2, 7, D)],
                   name="the MLP acts on each token separately").raise_if_failed()
with torch.device("meta"):  # ViT-B sizes, parameters without memory
    vit_b_block = ResidualAttentionBlock(768, 12)
n_params = {name: sum(p.numel() for p in part.parameters()) for name, part in
            [("MLP", vit_b_block.mlp), ("attention", vit_b_block.attn), ("LayerNorms", nn.ModuleList([vit_b_block.ln_1, vit_b_block.ln_2]))]}
print(n_params)
assert n_params == {"MLP": 8 * 768**2 + 5 * 768, "attention": 4 * 768**2 + 4 * 768, "LayerNorms": 4 * 768}
assert n_params == {"MLP": 4_722_432, "attention": 2_362_368, "LayerNorms": 3_072}
assert round(n_params["MLP"] / sum(n_params.values()), 2) == 0.67  # two thirds of the block

# %% [markdown]
# The nonlinearity $\phi$: ViT and BERT use **GELU**, $x\,\Phi(x)$ with $\Phi$ the standard normal
# CDF; CLIP, and so X-CLIP (§7), uses **QuickGELU**, $x\,\sigma(1.702x)$, because the logistic curve
# $\sigma(1.702x)$ is a classic close approximation of $\Phi(x)$. How close? We measure on a grid of
# step $10^{-5}$ over $[-10, 10]$; outside it both functions are within $10^{-6}$ of $\max(x, 0)$
# (and get closer), so the grid holds the maximum. Measured: $\max_x |\text{GELU}(x) -
# \text{QuickGELU}(x)| = 0.0203$ (to 4 decimals), at $x = \pm 2.270$ (to 3 decimals); the gates
# themselves differ by at most $|\Phi - \sigma(1.702\,\cdot)| = 0.0095$. The difference is an even
# function: both satisfy $f(x) - f(-x) = x$ (because $\Phi(-x) = 1 - \Phi(x)$ and
# $\sigma(-u) = 1 - \sigma(u)$), so it is the same at $x$ and $-x$. Small, but not zero: a network
# trained with one should be run with the same one, which is why `vidlearn` has `QuickGELU` for
# CLIP-style blocks.

# %% mystnb={"image": {"alt": "Left: GELU x\u00b7\u03a6(x) and QuickGELU x\u00b7\u03c3(1.702x) plotted over x, almost on top of each other. Right: their difference GELU minus QuickGELU over x, small everywhere."}}
grid = torch.linspace(-10, 10, 2_000_001)  # step 1e-5
gelu, quick = nn.functional.gelu(grid), QuickGELU()(grid)  # exact (erf) GELU
gap = (gelu - quick).abs()
i_max = int(gap.argmax())
print(f"max |GELU − QuickGELU| = {gap.max().item():.5f} at x = {grid[i_max].item():+.4f}")
assert round(gap.max().item(), 4) == 0.0203 and round(abs(grid[i_max].item()), 3) == 2.270
gate_gap = (0.5 * (1 + torch.erf(grid / math.sqrt(2))) - torch.sigmoid(1.702 * grid)).abs()
assert round(gate_gap.max().item(), 4) == 0.0095
for end in (-10.0, 10.0):  # the tails: both within 1e-6 of max(x, 0) at the grid's ends
    e = torch.tensor([end])
    assert (nn.functional.gelu(e) - e.clamp(min=0)).abs() < 1e-6 and (QuickGELU()(e) - e.clamp(min=0)).abs() < 1e-6
check_identity(lambda x: nn.functional.gelu(x) - QuickGELU()(x), lambda x: nn.functional.gelu(-x) - QuickGELU()(-x),
               shapes=[(1000,)], name="GELU − QuickGELU is even").raise_if_failed()

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
near = grid.abs() <= 4
axes[0].plot(grid[near][::100], gelu[near][::100], label="GELU  x·Φ(x)")
axes[0].plot(grid[near][::100], quick[near][::100], "--", label="QuickGELU  x·σ(1.702x)")
axes[0].legend()
axes[0].set_xlabel("x")
axes[1].plot(grid[near][::100], (gelu - quick)[near][::100])
axes[1].set_title("GELU − QuickGELU")
axes[1].set_xlabel("x")
plt.show()

# %% [markdown]
# ### 6.4 Pre-LN and post-LN
#
# Where the LayerNorm sits is a real choice. The original Transformer (Vaswani et al., 2017) and
# BERT put it **after** each residual sum, **post-LN**:
#
# $$x \leftarrow \text{LN}_1(x + \text{attn}(x)), \qquad x \leftarrow \text{LN}_2(x + \text{MLP}(x));$$
#
# GPT-2, ViT, CLIP and ViViT put it **before** each sublayer, **pre-LN** (§6.1), with one more
# LayerNorm after the last block. Two differences are exact:
#
# - a post-LN block's output is a LayerNorm's output, so every token leaves every block with mean 0
#   and variance 1 (up to $\varepsilon$, and up to the affine, the identity at initialisation); a
#   pre-LN stream is never normalised and grows as the blocks add to it;
# - in post-LN the LayerNorm sits *on* the residual path, so §6.1's identity path is gone: with both
#   sublayers silenced a post-LN block is $\text{LN}_2(\text{LN}_1(x))$, and its Jacobian at a token
#   has rank $d - 2$ (§6.2), not $d$.

# %%
post = ResidualAttentionBlock(D, 4, norm_first=False)
post.ln_1.eps = post.ln_2.eps = 0.0  # exact: with ε > 0 the scaling direction keeps a singular value of order ε/σ²
with torch.no_grad():
    for param in list(post.attn.w_o.parameters()) + list(post.mlp[2].parameters()):
        param.zero_()
    assert torch.allclose(post(h), post.ln_2(post.ln_1(h)), atol=1e-12)
J_post = torch.autograd.functional.jacobian(post, h[:1, :1])[0, 0, :, 0, 0]  # (D, D): one token
assert torch.linalg.matrix_rank(J_post) == D - 2

# %% [markdown]
# Does it matter for training? Xiong et al. (2020, "On Layer Normalization in the Transformer
# Architecture") analyse both at initialisation, with Xavier-initialised weights and simplifying
# assumptions, and prove that the gradient of the last layer's MLP weights is
# $O(d\sqrt{\ln d})$ for post-LN, whatever the depth $L$, but $O(d\sqrt{\ln d / L})$ for pre-LN. They
# argue that post-LN's large gradients near the output are why it needs a learning-rate warm-up,
# and show pre-LN Transformers training well without one. *We do not train here: the warm-up claim
# is theirs, not measured in this course.* What we do measure is their initialisation claim, on
# our blocks: stacks of $L = 1, 2, \dots, 32$ blocks of width 64 (4 heads, GELU), the stack of depth
# $L$ being the first $L$ blocks of one stack of 32, with Xavier-normal weights and zero biases as
# in their analysis, the pre-LN stacks followed by a final LayerNorm; a fixed random input of 8
# sequences of 16 tokens and a mean-squared error against a fixed random target (fixed seeds); the
# norm of the gradient of the last block's $W_2$.

# %% mystnb={"image": {"alt": "Left: log-log plot against depth L of the gradient norm of the last block's W\u2082 at initialisation, for post-LN, pre-LN and the 1/\u221aL reference. Right: RMS of the residual stream block by block in a 32-block model, for pre-LN and post-LN."}}
def last_block_gradients(norm_first, depth=32, width=64, xavier=True):
    """‖∂loss/∂W₂‖ of block L for the stack of the first L blocks, L = 1..depth; and the stream's RMS."""
    torch.manual_seed(0)
    blocks = [ResidualAttentionBlock(width, 4, norm_first=norm_first, activation=nn.GELU) for _ in range(depth)]
    for m in nn.ModuleList(blocks).modules():
        if xavier and isinstance(m, nn.Linear):  # the initialisation Xiong et al. analyse (torch's default is smaller)
            nn.init.xavier_normal_(m.weight)
            nn.init.zeros_(m.bias)
    final = nn.LayerNorm(width) if norm_first else nn.Identity()  # a post-LN stack already ends in one
    gen = torch.Generator().manual_seed(1)
    stream = torch.randn(8, 16, width, generator=gen)  # (B, L, d): the input
    target = torch.randn(8, 16, width, generator=gen)  # (B, L, d)
    grads, rms = [], []
    for blk in blocks:  # the stack of depth L is the first L blocks: one forward pass serves every depth
        stream = blk(stream)
        rms.append(stream.detach().pow(2).mean().sqrt().item())  # size of the residual stream after the block
        loss = (final(stream) - target).pow(2).mean()
        (g,) = torch.autograd.grad(loss, blk.mlp[2].weight, retain_graph=True)
        grads.append(g.norm().item())
    return grads, rms


all_pre, rms_pre = last_block_gradients(True)  # 32 gradient norms, depth L at index L − 1
all_post, rms_post = last_block_gradients(False)
every_depth = list(range(1, 33))
table_depths = [1, 2, 4, 8, 16, 32]  # the table prints these; the figure and the asserts use every depth
print(f"{'L':>3} {'pre-LN ‖∂loss/∂W2‖':>19} {'× √L':>7} {'post-LN ‖∂loss/∂W2‖':>20}")
for L_ in table_depths:
    print(f"{L_:>3} {all_pre[L_ - 1]:>19.4f} {all_pre[L_ - 1] * math.sqrt(L_):>7.3f} {all_post[L_ - 1]:>20.4f}")
print(f"residual stream RMS after block 1, 8, 32: pre-LN {rms_pre[0]:.2f}, {rms_pre[7]:.2f}, {rms_pre[31]:.2f};"
      f" post-LN {rms_post[0]:.4f}, {rms_post[7]:.4f}, {rms_post[31]:.4f}")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
axes[0].loglog(every_depth, all_post, ".-", label="post-LN")
axes[0].loglog(every_depth, all_pre, ".-", label="pre-LN")
axes[0].loglog(every_depth, [all_pre[0] / math.sqrt(L_) for L_ in every_depth], ":", label="pre-LN at L = 1, × 1/√L")
axes[0].set_xlabel("depth L")
axes[0].set_title("‖∂loss/∂W₂‖ of the last block, at initialisation")
axes[0].legend()
axes[1].plot(every_depth, rms_pre, label="pre-LN")
axes[1].plot(every_depth, rms_post, label="post-LN")
axes[1].set_xlabel("block")
axes[1].set_title("RMS of the residual stream (L = 32)")
axes[1].legend()
plt.show()


def depth_summary(grads):
    """The figures the text quotes, over every depth L = 1..32 of one list of gradient norms."""
    scaled = [g * math.sqrt(L_) for L_, g in zip(every_depth, grads)]  # ‖∂loss/∂W₂‖ · √L
    rises = [L_ for L_ in every_depth[1:] if grads[L_ - 1] > grads[L_ - 2]]  # depths where it grows
    return {
        "spread": max(grads) / min(grads),  # largest over smallest
        "argmax": every_depth[grads.index(max(grads))], "argmin": every_depth[grads.index(min(grads))],
        "fall": grads[0] / grads[-1],  # L = 1 over L = 32
        "rises": rises,
        "largest_rise": max((grads[L_ - 1] / grads[L_ - 2], L_) for L_ in rises) if rises else None,
        "scaled": (min(scaled), max(scaled)),
    }


pre_summary, post_summary = depth_summary(all_pre), depth_summary(all_post)
print(f"pre-LN : L = 1 → 32 falls by {pre_summary['fall']:.3f}; rises at L = {pre_summary['rises']}, the largest "
      f"{100 * (pre_summary['largest_rise'][0] - 1):.1f} % at L = {pre_summary['largest_rise'][1]}; "
      f"× √L from {pre_summary['scaled'][0]:.3f} to {pre_summary['scaled'][1]:.3f}")
print(f"post-LN: largest/smallest {post_summary['spread']:.3f}, "
      f"the largest at L = {post_summary['argmax']}, the smallest at L = {post_summary['argmin']}")

# %% [markdown]
# Measured (these figures, this seed, over **every** depth $L = 1, \dots, 32$; the table prints
# only $L = 1, 2, 4, \dots, 32$): post-LN's last-block gradient stays within a factor 1.3 of itself
# (largest over smallest: 1.25, the largest at $L = 32$, the smallest at $L = 22$).
# Pre-LN's falls by a factor 4.5 from $L = 1$ to $L = 32$: monotonically up to $L = 16$, then with
# small rises at $L = 17, 22, 24, 27, 30$ and $32$ (the largest 12 %, at $L = 24$). That is about the
# $1/\sqrt L$ of the theorem: the gradient $\times\sqrt L$ stays within a factor 1.5 of itself (0.12
# to 0.17) over all 32 depths while the gradient itself falls by 4.5. One seed and one width; the asserts
# below fix these statements, not the theorem's constants.
# The right panel shows why: the pre-LN stream's size grows with depth, and the final LayerNorm
# divides by it ($J \propto 1/\sigma$, §6.2), while a post-LN stream is renormalised after every
# sublayer. What this does to training — the warm-up — is the paper's claim, not measured here.
# With torch's default initialisation (smaller weights, so smaller sublayer outputs) the pre-LN
# stream grows more slowly and the effect is weaker, as the next cell measures, again over every
# depth: pre-LN's gradient falls by a factor 2.0 from $L = 1$ to $L = 32$, not monotonically (it
# rises at 10 of the 31 steps) and not like $1/\sqrt L$ (its $\times\sqrt L$ spans a factor 3.2);
# post-LN's stays within a factor 1.25 (largest over smallest: 1.22).

# %%
assert post_summary["spread"] < 1.3 and round(post_summary["spread"], 2) == 1.25, "post-LN: flat in depth"
assert (post_summary["argmax"], post_summary["argmin"]) == (32, 22)
assert round(pre_summary["fall"], 1) == 4.5, "pre-LN: shrinks with depth"
assert pre_summary["rises"] == [17, 22, 24, 27, 30, 32], "monotonic up to L = 16, small rises after"
ratio, at = pre_summary["largest_rise"]
assert (round(100 * (ratio - 1)), at) == (12, 24)
lo, hi = pre_summary["scaled"]
assert hi / lo < 1.5 and (round(lo, 2), round(hi, 2)) == (0.12, 0.17), "about like 1/√L"
assert all(abs(r - 1) < 1e-3 for r in rms_post) and rms_pre[31] > 3 * rms_pre[0]

# %%
default_pre, _ = last_block_gradients(True, xavier=False)
default_post, _ = last_block_gradients(False, xavier=False)
default_pre_summary, default_post_summary = depth_summary(default_pre), depth_summary(default_post)
lo, hi = default_pre_summary["scaled"]
print(f"torch's default init, over L = 1..32: pre-LN L=1 → 32 falls by {default_pre_summary['fall']:.2f}, "
      f"rises at {len(default_pre_summary['rises'])} of 31 steps, × √L spans a factor {hi / lo:.2f}; "
      f"post-LN largest/smallest {default_post_summary['spread']:.2f}")
assert round(default_pre_summary["fall"], 1) == 2.0 and len(default_pre_summary["rises"]) == 10
assert round(hi / lo, 1) == 3.2
assert default_post_summary["spread"] < 1.25 and round(default_post_summary["spread"], 2) == 1.22

# %% [markdown]
# ### 6.5 From a frame to tokens: patches and the [class] token
#
# So far the tokens were given. A ViT-style frame encoder makes them from pixels (ViT: Dosovitskiy
# et al., 2021; CLIP, Radford et al., 2021, trains such an image encoder together with a text
# encoder so that an image and its caption get similar outputs). It cuts the $C\times H\times W$
# frame into $N = (H/p)(W/p)$ non-overlapping $p\times p$ **patches**, flattens each into $C p^2$
# numbers and maps it with one shared linear layer to $d$: ViT-B/16 has $p = 16$, so a
# $224\times 224$ frame gives $N = 14\cdot 14 = 196$ patch tokens. Below we write the patch step
# once, check it against the library's `vidlearn.tubelets.tubelet_tokens` (a frame is a clip of
# one frame, a patch a $1\times p\times p$ tubelet), and check that the linear map on patches is a
# `Conv2d` with stride = kernel = $p$. Chapter 4 (§2) generalises both to *tubelets*,
# $t\times h\times w$ boxes spanning several frames, embedded by a `Conv3d`.
#
# Then a learned **[class] token**, one vector $z_\text{cls}\in\mathbb{R}^d$ shared by every frame,
# is put in front of the patch tokens, and a learned position embedding is added to each of the
# $1 + N$ tokens. The name is ViT's, after BERT's `[CLS]` (the special first token of every BERT
# input, whose output BERT classifies from); it is usually written CLS, as in chapter 5's ViViT
# models, and chapter 6 (BERT-style models) writes BERT's `[CLS]` — the same token. After the
# blocks, the output at the [class] position is the frame's summary: ViT classifies from it, CLIP
# projects it into the space it shares with text. It has no pixels of its own, so whatever it
# carries it gathered by attention from the patches. (Chapter 5 also uses the alternative,
# averaging the output tokens.)
#
# A tiny example: two frames of $3\times 8\times 12$ in $4\times 4$ patches, so
# $N = (8/4)(12/4) = 6$ patches of $3\cdot 4\cdot 4 = 48$ numbers each.

# %%
assert (224 // 16) ** 2 == 196 and (224 // 32) ** 2 == 49  # ViT-B/16 and ViT-B/32 patch counts at 224×224
p = 4
frames = torch.randn(2, 3, 8, 12)  # (B, C, H, W)


def patchify(frames):  # (B, C, H, W) -> (B, N, C·p·p): patches in row-major order, each flattened (c, i, j)
    return einops.rearrange(frames, "b c (nh p1) (nw p2) -> b (nh nw) (c p1 p2)", p1=p, p2=p)


patches = patchify(frames)  # (B, N, C·p·p)
assert patches.shape == (2, 6, 48)
assert torch.equal(patches[0, 1], frames[0, :, 0:4, 4:8].flatten()), "patches in row-major order"
# the library's version: a frame is a one-frame clip (B, 1, C, H, W), a patch a 1×p×p tubelet
check_identity(
    patchify,
    lambda f: tubelet_tokens(f[:, None], (1, p, p)).flatten(1, 3),  # (B, 1, n_h, n_w, C·p·p) -> (B, N, C·p·p)
    shapes=[(2, 3, 8, 12)],
    name="patchify == vidlearn.tubelets.tubelet_tokens with 1×p×p tubelets",
).raise_if_failed()

patch_embed = nn.Linear(3 * p * p, D)  # one map for every patch
class_token = nn.Parameter(0.02 * torch.randn(D))  # (D,): learned, the same for every frame
frame_pos = nn.Parameter(0.02 * torch.randn(1 + 6, D))  # (1 + N, D): learned positions


def frame_tokens(frames):  # (B, C, H, W) -> (B, 1 + N, D)
    cls = class_token.expand(frames.shape[0], 1, D)  # (B, 1, D)
    return torch.cat([cls, patch_embed(patchify(frames))], dim=1) + frame_pos  # (B, 1 + N, D)


z_frames = frame_tokens(frames)
assert z_frames.shape == (2, 1 + 6, D)

# the same linear map as a strided convolution, its weight (D, C·p·p) read as (D, C, p, p)
conv = nn.Conv2d(3, D, kernel_size=p, stride=p)
with torch.no_grad():
    conv.weight.copy_(patch_embed.weight.reshape(D, 3, p, p))
    conv.bias.copy_(patch_embed.bias)
with torch.no_grad():
    check_identity(
        lambda f: einops.rearrange(conv(f), "b d nh nw -> b (nh nw) d"),  # (B, N, D)
        lambda f: patch_embed(patchify(f)),  # (B, N, D)
        shapes=[(2, 3, 8, 12)],
        name="patch embedding == Conv2d with stride = kernel",
    ).raise_if_failed()

# %% [markdown]
# Where does the [class] token's information come from? Before any block it depends on no pixel
# at all. To see what one block gives it, we put **both** frames' tokens into one sequence of
# $2(1 + N) = 14$ tokens, as a joint encoder over a clip would. Without a mask, frame 0's [class]
# output depends on every patch of both frames. With a mask that lets each token attend only to
# the tokens of its own frame (§1's convention, True = may attend), it depends on every patch of
# frame 0 and on none of frame 1: the mask, not the batch layout, keeps the frames apart.

# %%
pixels = frames.clone().requires_grad_(True)  # (B, C, H, W)
(g_before,) = torch.autograd.grad(frame_tokens(pixels)[0, 0].sum(), pixels)  # frame 0's [class] token, before any block
assert torch.equal(g_before, torch.zeros_like(pixels)), "before any block the [class] token depends on no pixel"

encoder_block = ResidualAttentionBlock(D, 4)
frame_of = torch.arange(2).repeat_interleave(1 + 6)  # (2(1 + N),): which frame each token belongs to
own_frame = frame_of[:, None] == frame_of[None, :]  # (2(1 + N), 2(1 + N)): True = same frame, may attend
per_patch = {}
for name, mask in [("no mask", None), ("own-frame mask", own_frame)]:
    sequence = frame_tokens(pixels).reshape(1, 2 * (1 + 6), D)  # (1, 2(1 + N), D): both frames, one sequence
    (g_cls,) = torch.autograd.grad(encoder_block(sequence, mask=mask)[0, 0].sum(), pixels)  # frame 0's [class] output
    per_patch[name] = patchify(g_cls.abs()).sum(-1)  # (B, N): how much each patch of each frame matters
    print(f"{name:>15}: frame 0's [class] output depends on {int((per_patch[name][0] > 0).sum())} patches of "
          f"frame 0 and {int((per_patch[name][1] > 0).sum())} of frame 1")
assert torch.all(per_patch["no mask"] > 0), "one sequence, no mask: every patch of both frames"
assert torch.all(per_patch["own-frame mask"][0] > 0) and torch.all(per_patch["own-frame mask"][1] == 0), \
    "own-frame mask: every patch of its own frame, none of the other"

# %% [markdown]
# ## 7. X-CLIP: frames talk through message tokens
#
# All the pieces are now in place. X-CLIP (Ni et al., 2022, arXiv 2208.02816) turns CLIP's image
# encoder into a video encoder. Every frame $t$ of a clip becomes $1 + N$ tokens as in §6.5, its
# [class] token first: $(B, T, 1+N, D)$. Joint attention over every token of every frame would
# cost $T(N+1)$ tokens, so $T^2(N+1)^2$ score pairs. X-CLIP lets the frames communicate through
# one **message token** per frame instead; each of its blocks (`CrossFrameAttention`, a pre-LN
# block with QuickGELU as in §6.3–6.4) does:
#
# 1. message $m_t = W_\text{msg}\,z_{t,\text{cls}}$ from frame $t$'s [class] token — shape $(B, T, D)$;
# 2. **cross-frame fusion attention (CFA)**: the $T$ messages attend to each other,
#    $m \leftarrow m + \text{MHA}(\text{LN}(m))$ — each message fuses information from all frames;
# 3. **intra-frame diffusion attention (IFA)**: each message joins its own frame's $1+N$ tokens,
#    $(B\cdot T, N+2, D)$, and they attend among themselves — what the message gathered diffuses
#    into the frame;
# 4. the message token is dropped and the frame tokens go through the MLP: $(B, T, 1+N, D)$.
#
# Information from frame $s$ reaches frame $t$'s patches in one block, through $m_s \to m_t \to$
# patches. We check the shapes and that claim by gradients, then count the cost.

# %%
B, T, N = 2, 8, 16
cfa_block = CrossFrameAttention(D, 4)
z = torch.randn(B, T, 1 + N, D, requires_grad=True)  # (B, T, 1 + N, D): [class] token first
out, messages = cfa_block(z, return_messages=True)
assert out.shape == (B, T, 1 + N, D) and messages.shape == (B, T, D)
(g,) = torch.autograd.grad(out[0, -1, 1:].sum(), z)  # patches of the last frame
assert g[0, 0, 0].abs().sum() > 0, "frame 0's [class] token reaches the last frame's patches"
assert g[0, 0, 1:].abs().sum() == 0, "but frame 0's patches only through its message: not at all"
print("frame 0 → last frame: through the [class] token and messages only")

# %% [markdown]
# **Cost.** The attention scores first (the derivation counts $QK^\top$; the weighted sum of values
# costs the same again on both sides, so ratios do not change):

# %%
derivations.get("ch03.cross_frame_cost").verify()

# %% [markdown]
# Against joint attention's $T^2(N+1)^2 d$ score MACs the ratio is $T(N+1)^2/(T + (N+2)^2)$, a
# little under $T$ while $(N+2)^2 \gg T$: this, and only this, is the "about $T$ times cheaper".
# A whole block also pays for its projections and MLP, $12d^2$ MACs per token ($4d^2$ for Q, K, V
# and the output, $8d^2$ for the MLP at $m = 4d$), which grow only linearly with the number of
# tokens and are the same on both sides up to X-CLIP's extras (message projection, CFA, the
# message tokens in IFA). At ViT-B/16 sizes ($d = 768$, $N = 196$) they dominate: the whole X-CLIP
# block (`cross_frame_macs`) against one joint block over all $T(1+N)$ tokens (`block_macs`) is only
# **1.28×** cheaper at $T = 8$, 1.61× at $T = 16$, 2.26× at $T = 32$, and 1.06× with $N = 49$
# patches (ViT-B/32) at $T = 8$.

# %%
d = 768
print(f"{'T':>3} {'N':>4} {'scores: joint/X-CLIP':>21} {'block: joint (GMAC)':>20} {'X-CLIP (GMAC)':>14} {'ratio':>6}")
block_ratio = {}
for T_, N_ in [(8, 49), (8, 196), (16, 196), (32, 196)]:
    score_ratio = (T_ * (N_ + 1)) ** 2 * d / (T_**2 * d + T_ * (N_ + 2) ** 2 * d)
    joint = evaluate(block_macs(), L=T_ * (1 + N_), d=d, mlp_ratio=4)
    xclip = evaluate(cross_frame_macs(), T=T_, N=N_, d=d, mlp_ratio=4)
    block_ratio[T_, N_] = joint / xclip
    print(f"{T_:>3} {N_:>4} {score_ratio:>21.2f} {joint / 1e9:>20.2f} {xclip / 1e9:>14.2f} {joint / xclip:>6.2f}")
    assert 0.95 * T_ < score_ratio < T_  # "about T", for the scores
assert {k: round(v, 2) for k, v in block_ratio.items()} == {(8, 49): 1.06, (8, 196): 1.28, (16, 196): 1.61, (32, 196): 2.26}
# why so little: in the joint block at T = 8, N = 196, attention (scores and weighted sum) is a quarter of the MACs
L_joint = 8 * 197
attention_share = 2 * L_joint**2 * d / evaluate(block_macs(), L=L_joint, d=d, mlp_ratio=4)
print(f"share of attention in the joint block's MACs at T = 8: {attention_share:.3f}")
assert round(attention_share, 2) == 0.25

# %% [markdown]
# The formulas are the library's; that they count what the modules compute is checked against
# torch's FLOP counter (2 FLOPs per MAC, MATH attention backend forced), at this section's small
# sizes:

# %%
z_small = torch.randn(1, T, 1 + N, D)  # (B, T, 1 + N, D)
counted = count_flops(cfa_block, z_small)
assert counted == 2 * evaluate(cross_frame_macs(), T=T, N=N, d=D, mlp_ratio=4)
joint_block = ResidualAttentionBlock(D, 4)
joint_counted = count_flops(joint_block, z_small.reshape(1, T * (1 + N), D))  # (1, T(1 + N), D)
assert joint_counted == 2 * evaluate(block_macs(), L=T * (1 + N), d=D, mlp_ratio=4)
print(f"cross-frame block: {counted:,} FLOPs (formula exact); joint block over all {T * (1 + N)} tokens: {joint_counted:,}")

# %% [markdown]
# ## Exercises
#
# Open `exercises/ex03_temporal_attention.py`: build a causal mask, causal attention, one step of
# KV-cache decoding, and derive how many query–key pairs a causal mask keeps. `check(...)` names
# the classic mistakes — the mask transposed, applied after the softmax, the cache appended in the
# wrong order.
#
# ## Summary
#
# - Masks are boolean, True = may attend; causal and padding masks combine with AND. A row that is
#   `-inf` everywhere gives NaN in a plain softmax; the library's gives zeros.
# - A causal mask makes $\partial\,\text{out}_t/\partial x_s = 0$ for every $s > t$ — proved with the full
#   Jacobian — and keeps $T(T+1)/2$ of the $T^2$ pairs.
# - Causal attention can run frame by frame with a key/value cache, exactly equal to the masked
#   full pass.
# - Padded frames, hidden by a padding mask, change nothing, whatever they contain.
# - The last frame sees the first after $\lceil (T-1)/2\rceil$ causal kernel-3 convolutions, $T-1$
#   centred ones, and one attention layer.
# - One KV-cache step costs $4d^2 + 2(t+1)d$ MACs, $O(d^2 + t\,d)$ — equal to the FLOP counter.
# - A transformer block adds to a residual stream: $x + \text{attn}(\text{LN}(x))$, then
#   $x + \text{MLP}(\text{LN}(x))$; silenced, it is exactly the identity.
# - LayerNorm maps each token to mean 0, variance 1; its Jacobian
#   $(I - \mathbf 1\mathbf 1^\top/d - \hat x\hat x^\top/d)/\sigma$ kills $\mathbf 1$ and $\hat x$ (rank $d-2$): a
#   sublayer never sees a token's offset or scale.
# - The MLP ($d\to 4d\to d$, per token) holds two thirds of a block's parameters; GELU and CLIP's
#   QuickGELU differ by at most 0.0203, at $x = \pm 2.270$.
# - Post-LN normalises the stream after every sublayer and loses the identity path; at
#   initialisation (Xavier weights, every depth from 1 to 32) its last block's gradient stays
#   within a factor 1.3 (1.25) while pre-LN's falls by 4.5, about like $1/\sqrt L$ (measured; that
#   post-LN therefore needs warm-up is Xiong et al.'s claim).
# - A frame becomes $N = (H/p)(W/p)$ patch tokens (a linear map on flattened patches, equal to the
#   library's 1×p×p tubelets and to a `Conv2d` with stride = kernel) behind a learned [class] token
#   (CLS; BERT's `[CLS]`), whose output summarises the frame.
# - X-CLIP's message tokens (cross-frame fusion attention, then intra-frame diffusion attention)
#   cost $T^2 d + T(N+2)^2 d$ score MACs instead of $T^2(N+1)^2 d$: about $T$ times fewer *scores*.
#   The whole block, projections and MLP included, is only 1.28× cheaper than a joint block at
#   ViT-B/16 sizes and $T = 8$ (2.26× at $T = 32$).
