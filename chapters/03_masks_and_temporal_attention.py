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
# # Chapter 3 — Masks and temporal attention
#
# Frames are tokens; now time gets a direction. This chapter builds attention *along time*:
# which frames may look at which (masks), how a causal model can run one frame at a time
# (a key/value cache), how clips of different lengths share a batch (padding), how far
# convolutions and attention reach in time, and how X-CLIP lets frames talk cheaply through
# *message tokens*. Tutorials usually assert these things ("a causal mask keeps the future
# out"); here each one is proved on real tensors.
#
# ## Learning objectives
# After this chapter you can
# 1. build causal and padding masks in the course's convention (True = may attend), combine
#    them, and explain why a row that is `-inf` everywhere gives NaN;
# 2. prove with a full Jacobian that a causal layer's output at frame $t$ does not depend on any
#    frame $s > t$;
# 3. run causal attention one frame at a time with a key/value cache and show it equals the full
#    masked computation;
# 4. derive how many layers of temporal convolution the last frame needs to see the first, and
#    why one attention layer is enough;
# 5. explain X-CLIP's cross-frame communication (message tokens, CFA, IFA) with its tensor shapes,
#    and compare its cost with joint space-time attention.

# %%
import math

import matplotlib.pyplot as plt
import torch
from torch import nn

from vidlearn import derivations
from vidlearn.attention import softmax
from vidlearn.derive import check_identity
from vidlearn.flops import count_flops, cross_frame_macs, evaluate, mha_macs
from vidlearn.masks import causal_mask, combine_masks, padding_mask
from vidlearn.blocks import ResidualAttentionBlock
from vidlearn.temporal import CrossFrameAttention, TemporalAttention

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)

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

# %%
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

# %%
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
# value, attend with the new query) costs $O(t\,d)$ per frame instead of recomputing everything.
# We prove that stepping through the clip with `TemporalAttention.step` gives exactly the full
# masked computation.

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
# ## 6. Residual attention blocks and X-CLIP's cross-frame attention
#
# Real models wrap attention in a **residual block**. CLIP's is pre-LayerNorm:
# $x \leftarrow x + \text{attn}(\text{LN}(x))$, then $x \leftarrow x + \text{MLP}(\text{LN}(x))$, the MLP
# with QuickGELU $x\,\sigma(1.702x)$. It maps $(B, L, D) \to (B, L, D)$ and accepts the same masks.

# %%
block = ResidualAttentionBlock(D, 4)
h = torch.randn(2, T, D)
assert block(h).shape == h.shape
with torch.no_grad():  # the residual path: with attention and MLP zeroed, the block is the identity
    for p in list(block.attn.w_o.parameters()) + list(block.mlp[2].parameters()):
        p.zero_()
    assert torch.equal(block(h), h)

# %% [markdown]
# Joint attention over every patch of every frame is expensive: $T(N+1)$ tokens, so $T^2(N+1)^2$
# score pairs. X-CLIP (Ni et al., 2022) lets frames communicate through one **message token** per
# frame instead:
#
# 1. message $m_t = W_\text{msg}\,z_{t,\text{cls}}$ from frame $t$'s [class] token — shape $(B, T, D)$;
# 2. **cross-frame attention (CFA)**: the $T$ messages attend to each other, $m \leftarrow m + \text{MHA}(\text{LN}(m))$;
# 3. **intra-frame attention (IFA)**: each message joins its own frame's $1+N$ tokens,
#    $(B\cdot T, N+2, D)$, and they attend among themselves;
# 4. the message token is dropped and the frame tokens go through the MLP: $(B, T, 1+N, D)$.
#
# Information from frame $s$ reaches frame $t$'s patches in one block, through $m_s \to m_t \to$
# patches. We check the shapes and that claim by gradients, then count the cost.

# %%
B, T, N = 2, 8, 16
cfa_block = CrossFrameAttention(D, 4)
z = torch.randn(B, T, 1 + N, D, requires_grad=True)
out, messages = cfa_block(z, return_messages=True)
assert out.shape == (B, T, 1 + N, D) and messages.shape == (B, T, D)
(g,) = torch.autograd.grad(out[0, -1, 1:].sum(), z)  # patches of the last frame
assert g[0, 0, 0].abs().sum() > 0, "frame 0's [class] token reaches the last frame's patches"
assert g[0, 0, 1:].abs().sum() == 0, "but frame 0's patches only through its message: not at all"
print("frame 0 → last frame: through the [class] token and messages only")

# %%
derivations.get("ch03.cross_frame_cost").verify()

d = 768
print(f"{'T':>3} {'N':>4} {'joint scores (GMAC)':>20} {'CFA+IFA scores (GMAC)':>22} {'ratio':>7}")
for T_, N_ in [(8, 49), (8, 196), (16, 196), (32, 196)]:
    joint = (T_ * (N_ + 1)) ** 2 * d
    xclip = T_**2 * d + T_ * (N_ + 2) ** 2 * d
    print(f"{T_:>3} {N_:>4} {joint / 1e9:>20.2f} {xclip / 1e9:>22.3f} {joint / xclip:>7.1f}")
    assert joint / xclip > T_ * 0.9  # the saving grows linearly with the number of frames

# the whole block, formula vs torch's FLOP counter (2 FLOPs per MAC, MATH backend forced)
z_small = torch.randn(1, T, 1 + N, D)
counted = count_flops(cfa_block, z_small)
formula = cross_frame_macs()
assert counted == 2 * evaluate(formula, T=T, N=N, d=D, mlp_ratio=4)
joint_block = ResidualAttentionBlock(D, 4)
joint_counted = count_flops(joint_block, z_small.reshape(1, T * (1 + N), D))
assert joint_counted == 2 * (evaluate(mha_macs(), N=T * (1 + N), d=D, h=4) + 8 * T * (1 + N) * D * D)
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
# - X-CLIP's message tokens let frames communicate at $T^2 d + T(N+2)^2 d$ score MACs instead of
#   $T^2(N+1)^2 d$ for joint attention — about $T$ times cheaper.
