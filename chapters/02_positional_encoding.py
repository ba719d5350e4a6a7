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
# # Chapter 2 — Positional encoding
#
# Attention compares every frame with every other frame, but nothing in
# $\operatorname{softmax}(QK^\top/\sqrt{d_k})V$ knows *which* frame came first. For video that is
# fatal: "a ball rises" and "a ball falls" are the same frames in opposite order. This chapter
# proves the problem, then builds the standard fix — add a position-dependent vector to each
# token — and proves the properties that make the sinusoidal version work.
#
# ## Learning objectives
# After this chapter you can
# 1. show that attention without positions is permutation-equivariant, and what that means for
#    the direction of time;
# 2. write the sinusoidal encoding of Vaswani et al. exactly (base 10000) and read its heatmap;
# 3. derive that $PE(t+k) = R(k)\,PE(t)$ with $R(k)$ a block-diagonal rotation independent of $t$,
#    that $PE(t)\cdot PE(t+k)$ depends only on $k$, and that $\lVert PE(t)\rVert^2 = d/2$;
# 4. explain the range of wavelengths, from $2\pi$ to $2\pi\cdot\text{base}$, and what a wrong base does;
# 5. use learned encodings, know their length limit, and build separable space-time encodings
#    for video tokens.

# %%
import math

import matplotlib.pyplot as plt
import torch

from vidlearn import derivations
from vidlearn.attention import MultiHeadAttention
from vidlearn.derive import check_identity
from vidlearn.positional import (
    LearnedPositionalEncoding,
    SeparableSpaceTimeEncoding,
    SinusoidalPositionalEncoding,
    frequencies,
    relative_rotation,
    sinusoidal_encoding,
    space_time_sinusoidal_encoding,
)

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)

# %% [markdown]
# ## 1. Attention cannot see order
#
# Let $P$ be a permutation of the $T$ frames. Self-attention satisfies
# $\operatorname{MHA}(PX) = P\,\operatorname{MHA}(X)$: shuffle the frames and the outputs are
# shuffled the same way, with the same values. In particular, a clip played **backwards**
# produces exactly the reversed outputs: pooled over time, the two are indistinguishable.

# %%
T, D = 10, 32
mha = MultiHeadAttention(D, 4)
perm = torch.randperm(T)
reverse = torch.arange(T - 1, -1, -1)

with torch.no_grad():
    for name, p in [("random permutation", perm), ("time reversal", reverse)]:
        check_identity(
            lambda x: mha(x[:, p]), lambda x: mha(x)[:, p], shapes=[(2, T, D)], name=f"MHA(PX) == P·MHA(X), {name}"
        ).raise_if_failed()

    clip = torch.randn(1, T, D)
    pooled_forward = mha(clip).mean(1)
    pooled_backward = mha(clip[:, reverse]).mean(1)
assert torch.allclose(pooled_forward, pooled_backward)
print("pooled output, forward vs reversed clip, max difference:", (pooled_forward - pooled_backward).abs().max().item())

# %% [markdown]
# Adding a position-dependent vector to each frame breaks the symmetry: the same frame now looks
# different at different times.

# %%
add_pe = SinusoidalPositionalEncoding(D)
with torch.no_grad():
    fwd = mha(add_pe(clip)).mean(1)
    bwd = mha(add_pe(clip[:, reverse])).mean(1)
gap = (fwd - bwd).abs().max().item()
print("with positional encoding, forward vs reversed pooled outputs differ by", round(gap, 4))
assert gap > 1e-3

# %% [markdown]
# ## 2. The sinusoidal encoding
#
# Vaswani et al. (2017, §3.5) define, for position $p$ and channel pair $i = 0, \dots, d/2-1$,
#
# $$PE[p, 2i] = \sin\!\big(p / 10000^{2i/d}\big),\qquad PE[p, 2i+1] = \cos\!\big(p / 10000^{2i/d}\big).$$
#
# Channel pair $i$ turns at angular frequency $\omega_i = 10000^{-2i/d}$: fast in the first
# channels, slow in the last. First we check the library against the formula written out
# term by term.

# %% mystnb={"image": {"alt": "Heat map of the sinusoidal position encoding for d = 64 and base 10000: channels (rows) against frame position p (columns), values from -1 (blue) to 1 (red); the low channels oscillate fast, the high ones slowly."}}
n_pos, d_model = 50, 16
pe = sinusoidal_encoding(n_pos, d_model, dtype=torch.float64)  # (P, D)
by_hand = torch.tensor(
    [
        [
            math.sin(p / 10000 ** (c / d_model)) if c % 2 == 0 else math.cos(p / 10000 ** ((c - 1) / d_model))
            for c in range(d_model)
        ]
        for p in range(n_pos)
    ]
)
assert torch.allclose(pe, by_hand, atol=1e-12)

fig, ax = plt.subplots(figsize=(7, 3))
im = ax.imshow(sinusoidal_encoding(64, 64).T.numpy(), aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
ax.set_xlabel("position (frame index) p")
ax.set_ylabel("channel")
ax.set_title("sinusoidal encoding, d = 64, base 10000")
fig.colorbar(im, ax=ax)
plt.show()

# %% [markdown]
# ### The base is 10000 — not 1000
#
# Some tutorials (including the material this course was commissioned from: seed 000, line 40)
# write the base as 1000. The paper's value, and the library's default, is **10000**. The base sets the longest
# wavelength: pair $i$ has wavelength $\lambda_i = 2\pi/\omega_i = 2\pi\cdot\text{base}^{2i/d}$,
# from $2\pi$ for $i=0$ up to (just under) $2\pi\cdot\text{base}$.

# %%
derivations.get("ch02.wavelengths").verify()

# %%
slowest = {}
for base in (10000.0, 1000.0):
    lam = 2 * math.pi / frequencies(512, base)  # float64
    print(f"base {base:>7.0f}: wavelengths from {lam[0]:.2f} to {lam[-1]:,.0f} positions")
    assert math.isclose(lam[0].item(), 2 * math.pi) and lam[-1] < 2 * math.pi * base
    # the last pair is i = d/2 - 1: its wavelength is 2π·base^((d-2)/d), not the bound 2π·base
    assert math.isclose(lam[-1].item(), 2 * math.pi * base ** (510 / 512), rel_tol=1e-6)
    slowest[base] = round(lam[-1].item())
assert slowest == {10000.0: 60611, 1000.0: 6116}, slowest
assert not torch.allclose(sinusoidal_encoding(100, 64, 1000.0), sinusoidal_encoding(100, 64))

# %% [markdown]
# With base 1000 the encoding is still a valid encoding, but it is a *different* one: a model
# trained with one and evaluated with the other sees wrong positions, and the slowest channels
# repeat about ten times sooner: for $d = 512$ after 6,116 instead of 60,611 positions (to the nearest
# position, asserted above). The slowest pair is $i = d/2 - 1$, so its wavelength is
# $2\pi\cdot\text{base}^{(d-2)/d}$: just under $2\pi\cdot\text{base}$ (6,283 and 62,832), a bound that
# is never reached. If you reproduce a paper, use its base.
#
# ## 3. Relative positions are rotations
#
# Why sines *and* cosines? Because a shift in time is then a linear map. For one channel pair,
# angle addition gives $PE(t+k) = R(k)\,PE(t)$ with a $2\times2$ rotation by angle $\omega k$:

# %%
derivations.get("ch02.pe_rotation").verify()

# %% [markdown]
# Stacking the pairs, $R(k)$ is block-diagonal with one such rotation per pair. It depends on the
# offset $k$ but **not on $t$**, so one fixed linear map turns "position $t$" into "position
# $t+k$" everywhere in the clip — a pattern a layer with weights can learn. We check it on the
# full encoding, for many $t$ and $k$ at once:

# %%
d_model = 64
table = sinusoidal_encoding(300, d_model, dtype=torch.float64)  # (300, D)


def shifted_by_rotation(t, k):
    return torch.stack([relative_rotation(int(kk), d_model) @ table[int(tt)] for tt, kk in zip(t, k)])


def shifted_by_lookup(t, k):
    return table[t + k]


def random_positions(gen):
    t = torch.randint(0, 150, (20,), generator=gen)
    k = torch.randint(0, 150, (20,), generator=gen)
    return t, k


check_identity(shifted_by_rotation, shifted_by_lookup, make_inputs=random_positions, name="R(k)·PE(t) == PE(t+k)").raise_if_failed()
R = relative_rotation(7, d_model)
assert torch.allclose(R @ R.T, torch.eye(d_model)), "R(k) is orthogonal: it rotates, it does not stretch"
print("R(k) PE(t) = PE(t+k) for all tested t, k; R(k) is orthogonal")

# %% [markdown]
# ## 4. Dot products see only the offset
#
# The attention logit between two encodings is their dot product. Summing the per-pair identity
# $\sin a\sin b + \cos a\cos b = \cos(a-b)$ over the $d/2$ pairs:

# %%
derivations.get("ch02.pe_dot_product").verify()

# %% [markdown]
# So $PE(t)\cdot PE(t+k) = \sum_i \cos(\omega_i k)$, the same for every $t$. And at $k = 0$ every
# cosine is 1, which gives the norm:

# %%
derivations.get("ch02.pe_norm").verify()

# %% mystnb={"image": {"alt": "Line plot of the dot product PE(t)\u00b7PE(t+k) against the offset k for base 10000 (solid) and base 1000 (dashed), with a grey line at d/2, its value at k = 0."}}
d_model = 128
table = sinusoidal_encoding(400, d_model, dtype=torch.float64)
offsets = torch.arange(-100, 101)
dots_at = {t0: torch.stack([table[t0] @ table[t0 + k] for k in offsets]) for t0 in (100, 150, 250)}
for t0 in (150, 250):
    assert torch.allclose(dots_at[100], dots_at[t0]), "the dot product depends on the offset only"
assert torch.allclose((table**2).sum(-1), torch.full((400,), d_model / 2))
# cos is even: the dot product cannot tell k from -k (direction needs the learned W_Q, W_K)
assert torch.allclose(dots_at[100], dots_at[100].flip(0))

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(offsets, dots_at[100], label="base 10000")
table_1000 = sinusoidal_encoding(400, d_model, base=1000.0, dtype=torch.float64)
ax.plot(offsets, torch.stack([table_1000[100] @ table_1000[100 + k] for k in offsets]), "--", label="base 1000")
ax.axhline(d_model / 2, color="gray", lw=0.5)
ax.set_xlabel("offset k")
ax.set_ylabel(r"$PE(t)\cdot PE(t+k)$")
ax.set_title(f"dot product against offset (d = {d_model}, any t)")
ax.legend()
plt.show()
print(f"‖PE(t)‖² = {d_model / 2:.0f} for every t")

# %% [markdown]
# The dot product peaks at $k=0$ (value $d/2$), and at every other whole offset it is smaller
# (the $i = 0$ term is $\cos k < 1$). It first falls as $|k|$ grows, so nearby frames look more
# alike than frames a few steps apart, but it does **not** fall off monotonically: at $d = 128$ it
# decreases up to $k = 11$, rises from 11 to 12, and oscillates from there on (the plot above). It is
# symmetric in $k$, so the raw encodings' dot product says *how far* but not *which way*.
#
# %%
dots = dots_at[100][100:]  # (101,) PE(t)·PE(t+k) for k = 0..100
assert torch.all(dots[1:] < d_model / 2), "k = 0 is the only maximum"
rises = torch.nonzero(dots[1:] > dots[:-1]).flatten()  # k where going to k + 1 increases the dot product
assert rises[0] == 11 and len(rises) > 10, "decreasing up to k = 11, then not monotone"
k_last = len(dots) - 1  # 100
steps_from_first_rise = k_last - int(rises[0])  # the steps k -> k + 1 for k = 11..99
print(f"decreasing for k = 0..11; of the {steps_from_first_rise} steps k -> k + 1 from k = {int(rises[0])} to "
      f"{k_last}, it rises at {len(rises)}")

# %% [markdown]
# Can attention tell past from future at all? Its logit is not $PE(t)\cdot PE(s)$ but
# $(W_Q PE(t))\cdot(W_K PE(s)) = PE(t)^\top W_Q^\top W_K\, PE(s)$, and $W_Q^\top W_K$ need not be
# symmetric. One choice shows that the encodings carry the sign: if $W_Q^\top W_K$ turns each
# (sin, cos) pair by a quarter turn, $(x, y) \mapsto (-y, x)$, the logit becomes
# $\sum_i \sin(\omega_i k)$, which is odd in $k$ — still a function of the offset alone:

# %%
derivations.get("ch02.pe_signed_offset").verify()

# %%
quarter_turn = torch.zeros(d_model, d_model, dtype=torch.float64)  # (D, D): W_Qᵀ W_K, block-diagonal
quarter_turn[0::2, 1::2] = -torch.eye(d_model // 2, dtype=torch.float64)  # new x = -y
quarter_turn[1::2, 0::2] = torch.eye(d_model // 2, dtype=torch.float64)  # new y = x
omega = frequencies(d_model)  # (d/2,)
for t0 in (100, 150, 250):
    signed = torch.stack([table[t0] @ quarter_turn @ table[t0 + k] for k in offsets])  # (201,)
    expected = torch.stack([torch.sin(omega * k).sum() for k in offsets])
    assert torch.allclose(signed, expected), "Σ sin(ω_i k), whatever t"
    assert torch.allclose(signed, -signed.flip(0)), "odd in k: k and -k get opposite logits"
print(f"quarter-turn logit at k = +1: {expected[101]:+.3f}, at k = -1: {expected[99]:+.3f}")

# %% [markdown]
# So a layer *can* tell past from future through $W_Q$ and $W_K$. Whether a trained layer does is
# a property of what it learned, which this chapter does not measure.
#
# ## 5. Learned encodings and their length limit
#
# A learned encoding is a table of $P$ trainable vectors, one per position. It can fit whatever
# the data wants, but it has nothing to say about position $P$ or later. A common tutorial
# pattern (seed 000's temporal attention layer, line 85) allocates a table of 1000 positions,
# with the comment "assume at most 1000 frames", and slices it with `table[:, :T]` without
# checking $T$. At $T = 1200$ the slice silently has 1000 rows, and the very next line, which
# adds it to the frames, fails with a broadcasting error about tensor sizes that does not name
# the limit. The library checks the length where it matters and says what to do.

# %%
table_1000 = torch.nn.Parameter(torch.randn(1, 1000, D))
long_clip = torch.randn(1, 1200, D)
sliced = table_1000[:, : long_clip.shape[1]]
print("the tutorial slice has", sliced.shape[1], "positions for a clip of", long_clip.shape[1], "frames")
try:
    long_clip + sliced  # the tutorial's next line: x_with_pos = x + pos
except RuntimeError as err:
    assert "must match the size" in str(err), err  # a shape mismatch, not "the table has 1000 rows"
    print("tutorial pattern:", str(err).splitlines()[0])
else:
    raise AssertionError("adding a 1000-row slice to a 1200-frame clip must fail")

learned = LearnedPositionalEncoding(1000, D)
try:
    learned(long_clip)
    raise AssertionError("a clip longer than the table must be rejected")
except ValueError as err:
    print("vidlearn:", err)
assert learned(torch.randn(2, 1000, D)).shape == (2, 1000, D)
print("parameters:", sum(p.numel() for p in learned.parameters()), "= 1000 ×", D)

# %% [markdown]
# The sinusoidal encoding has no table and no limit: `SinusoidalPositionalEncoding` handles the
# 1200-frame clip. (Whether a model trained on short clips *generalises* to long ones is a
# different question; at least it gets well-defined inputs.)

# %%
assert SinusoidalPositionalEncoding(D)(long_clip).shape == long_clip.shape

# %% [markdown]
# ## 6. Space-time encodings for video tokens
#
# Once frames are cut into patches (chapter 3, §6.5), a token has a time index $t$ and a spatial index
# (row $y$, column $x$). A full learned table over all $T\cdot N$ positions costs $T\cdot N\cdot D$
# parameters; a **separable** encoding adds a time vector and a space vector,
# $E[t, n] = E_\text{time}[t] + E_\text{space}[n]$, with $(T+N)\cdot D$ parameters. The
# sinusoidal version splits the channels into a time group, a row group and a column group.

# %%
T, H, W, D = 8, 4, 4, 48
st = space_time_sinusoidal_encoding(T, H, W, D, dtype=torch.float64)  # (T, H, W, D)
d_s = 2 * (D // 6)
d_t = D - 2 * d_s
time_part, space_part = st[..., :d_t], st[..., d_t:]
assert torch.allclose(time_part, time_part[:, :1, :1].expand_as(time_part)), "time channels do not vary over space"
assert torch.allclose(space_part, space_part[:1].expand_as(space_part)), "space channels do not vary over time"
flat = st.reshape(T * H * W, D)
min_dist = torch.cdist(flat, flat).add(torch.eye(T * H * W) * 1e9).min()
assert min_dist > 1e-3, "every (t, y, x) gets its own encoding"
print(f"{T * H * W} space-time positions, all distinct (closest pair {min_dist:.3f} apart)")

sep = SeparableSpaceTimeEncoding(n_frames=T, n_patches=H * W, d_model=D)
x = torch.randn(2, T, H * W, D)
expected = x + sep.time.table[:, None, :] + sep.space.table[None, :, :]
assert torch.allclose(sep(x), expected)
n_sep = sum(p.numel() for p in sep.parameters())
assert n_sep == (T + H * W) * D

# ViViT-B-sized grid: 16 temporal × 14×14 spatial token positions, width 768
full, separable = 16 * 196 * 768, (16 + 196) * 768
print(f"ViViT-B-sized grid: full table {full:,} parameters, separable {separable:,} ({full / separable:.0f}× fewer)")

# %% [markdown]
# ## Exercises
#
# Open `exercises/ex02_positional_encoding.py`: write `sinusoidal_encoding`, the relative
# rotation $R(k)$, and the derivation that $PE(t)\cdot PE(t+k)$ depends only on $k$, each checked
# by `check(...)`.
#
# ## Summary
#
# - Self-attention is permutation-equivariant: without positions, a clip and its time reversal
#   give the same pooled output.
# - Sinusoidal encoding (base **10000**): $PE[p,2i] = \sin(p\,\omega_i)$,
#   $PE[p,2i+1] = \cos(p\,\omega_i)$, $\omega_i = 10000^{-2i/d}$; wavelengths from $2\pi$ to almost
#   $2\pi\cdot 10000$.
# - $PE(t+k) = R(k)\,PE(t)$ with $R(k)$ block-diagonal rotations independent of $t$;
#   $PE(t)\cdot PE(t+k) = \sum_i\cos(\omega_i k)$ depends only on $k$ (even in $k$, largest at
#   $k = 0$, not monotone); $\lVert PE(t)\rVert^2 = d/2$. Direction needs $W_Q^\top W_K$: a
#   quarter turn per pair gives $\sum_i\sin(\omega_i k)$, odd in $k$.
# - Learned tables cannot go past their length; the library says so instead of leaving torch to
#   fail with a broadcasting error that does not name the limit.
# - Video tokens use separable space-time encodings: $(T+N)D$ parameters instead of $TND$.
