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
# # Chapter 4 — Tubelet embedding
#
# A transformer needs a sequence of tokens; a video is a block of pixels, $T$ frames of
# $C\times H\times W$. This chapter builds the two standard ways to cut one into the other,
# following ViViT (Arnab et al., 2021): **uniform frame sampling**, which treats a few frames as
# images, and **tubelet embedding**, which cuts space-time boxes of $t\times h\times w$ pixels. We
# prove that a tubelet embedding is nothing but a matrix product, count the tokens it makes,
# initialise it from an image model in two ways and watch those two ways disagree the moment
# something moves, and finally give the tokens positions.
#
# ## Learning objectives
# After this chapter you can
# 1. turn a clip into tokens by uniform frame sampling and by tubelet embedding, and say exactly
#    which frames each token depends on;
# 2. prove that a `Conv3d` whose stride equals its kernel is one linear map applied to flattened
#    tubelets, and flatten them in the order that makes this exact;
# 3. derive the token count $\lfloor T/t\rfloor\lfloor H/h\rfloor\lfloor W/w\rfloor$ (3136 for a
#    32-frame 224×224 clip with 2×16×16 tubelets) and say what the floors drop;
# 4. initialise a tubelet embedding from a 2D patch embedding by inflation or by central-frame
#    initialisation, prove both reproduce the image model on a static video, and predict how they
#    differ on a moving one;
# 5. choose positional embeddings for a grid of tubelet tokens and count their parameters.
#
# Conventions: a video is `(B, T, C, H, W)` (time before channels), a tubelet is $t\times h\times w$,
# the token grid is $n_t\times n_h\times n_w$ and the token width is $D$.

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from vidlearn import derivations
from vidlearn.derive import check_identity
from vidlearn.positional import LearnedPositionalEncoding, SeparableSpaceTimeEncoding
from vidlearn.tubelets import (
    TubeletEmbedding,
    UniformFrameSampling,
    central_frame_init,
    inflate_2d_filter,
    token_grid,
    tubelet_tokens,
)

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)  # exact comparisons below; the library works in any float dtype

# %% [markdown]
# ## 1. Two ways to make tokens
#
# Our test clip is tiny and made on the spot: a coloured square sliding diagonally, one pixel
# down and one to the right per frame, over a little noise. Sixteen frames of $32\times 32$.

# %%
def moving_square(T=16, H=32, W=32, size=6, seed=0):
    """A square moving (+1, +1) pixels per frame over faint noise: (1, T, 3, H, W)."""
    gen = torch.Generator().manual_seed(seed)
    colour = 0.5 + 0.5 * torch.rand(3, generator=gen)  # (3,)
    # start where the whole path stays inside the frame
    y0, x0 = (int(torch.randint(0, L - size - (T - 1) + 1, (1,), generator=gen)) for L in (H, W))
    video = 0.05 * torch.randn(1, T, 3, H, W, generator=gen)  # (B, T, C, H, W)
    for f in range(T):
        video[0, f, :, y0 + f : y0 + f + size, x0 + f : x0 + f + size] += colour[:, None, None]
    return video


video = moving_square()  # (1, 16, 3, 32, 32)
B, T, C, H, W = video.shape
D = 24

# %% [markdown]
# **Uniform frame sampling** picks $n_f$ frames spread evenly over the clip (indices
# $\operatorname{round}(\operatorname{linspace}(0, T-1, n_f))$) and embeds each like an image: a
# 2D patch embedding (`Conv2d` with stride = kernel = $h\times w$; chapter 3 §6.5 built it and
# checked that it is one linear map applied to every flattened patch). **Tubelet embedding** cuts the
# clip into $t\times h\times w$ boxes and embeds each with a `Conv3d` with stride = kernel.
#
# With $n_f = 4$ sampled frames and $4\times 8\times 8$ tubelets both produce a $4\times4\times4$
# grid of 64 tokens — the same sequence length, so the same transformer cost afterwards. What
# differs is what each token has seen. We measure it: the gradient of the tokens of time step $k$
# with respect to the input is nonzero exactly on the frames those tokens depend on.

# %%
sampler = UniformFrameSampling(n_frames=4, d_model=D, patch=(8, 8), in_channels=C)
tubelets = TubeletEmbedding(C, D, tubelet=(4, 8, 8))
tok_sampled, tok_tubelet = sampler(video), tubelets(video)  # (B, 4, 16, D) each
assert tok_sampled.shape == tok_tubelet.shape == (1, 4, 16, D)
print("sampled frames:", sampler.indices(T).tolist())


def frames_seen(embed, video):
    """(n_time_steps, T) boolean: does token time step k depend on frame f?"""
    n_steps = embed(video).shape[1]
    rows = []
    for k in range(n_steps):
        x = video.clone().requires_grad_(True)
        embed(x)[:, k].sum().backward()
        rows.append(x.grad.abs().sum(dim=(0, 2, 3, 4)) > 0)  # (T,)
    return torch.stack(rows)


seen_sampled, seen_tubelet = frames_seen(sampler, video), frames_seen(tubelets, video)
for k, f in enumerate(sampler.indices(T).tolist()):
    assert seen_sampled[k].nonzero().flatten().tolist() == [f], "a sampled token sees one frame"
    assert seen_tubelet[k].nonzero().flatten().tolist() == list(range(4 * k, 4 * k + 4)), "a tubelet token sees t frames"
print(f"frames ever seen: uniform sampling {int(seen_sampled.any(0).sum())} of {T}, tubelets {int(seen_tubelet.any(0).sum())} of {T}")
assert seen_sampled.any(0).sum() == 4 and seen_tubelet.any(0).all()

# %% mystnb={"image": {"alt": "Top: a strip of the 16 frames of a clip with a moving square. Below: for uniform frame sampling and for 4\u00d78\u00d78 tubelets, black-and-white maps of which frames each token time step depends on."}}
strip = torch.cat([torch.nn.functional.pad(video[0, f], (0, 1), value=1.0) for f in range(T)], dim=-1)  # (3, H, 16·(W+1))
fig, axes = plt.subplots(3, 1, figsize=(10, 3.6), gridspec_kw={"height_ratios": [1.2, 1, 1]})
axes[0].imshow(strip.permute(1, 2, 0).clamp(0, 1).numpy())
axes[0].set_title("the clip: 16 frames of a moving square")
for ax, seen, name in ((axes[1], seen_sampled, "uniform frame sampling"), (axes[2], seen_tubelet, "tubelet 4×8×8")):
    ax.imshow(seen.numpy(), cmap="Greys", aspect="auto", extent=(-0.5, T - 0.5, 3.5, -0.5))
    ax.set_ylabel("token step")
    ax.set_yticks(range(4))
    ax.set_title(f"{name}: which frames each token time step depends on")
for ax in axes:
    ax.set_xticks([] if ax is axes[0] else range(T))
axes[0].set_yticks([])
axes[2].set_xlabel("frame")
fig.tight_layout()
plt.show()

# %% [markdown]
# Uniform frame sampling never looks at 12 of the 16 frames: the motion between samples is
# invisible to it, and any temporal reasoning must happen later, in attention between tokens
# of different frames. A tubelet token mixes $t$ consecutive frames in its very first linear
# map, so short-range motion is already inside the token. Uniform frame sampling is the special
# case $t = 1$ of a tubelet embedding, applied to the sampled frames.

# %%
as_tubelet = TubeletEmbedding(C, D, tubelet=(1, 8, 8))
with torch.no_grad():
    as_tubelet.proj.weight.copy_(sampler.proj.weight.unsqueeze(2))  # (D, C, 1, h, w)
    as_tubelet.proj.bias.copy_(sampler.proj.bias)
with torch.no_grad():
    check_identity(
        lambda v: sampler(v),
        lambda v: as_tubelet(v[:, sampler.indices(v.shape[1])]),
        shapes=[(2, 16, C, 32, 32)],
        name="uniform frame sampling == 1×h×w tubelets on the sampled frames",
    ).raise_if_failed()

# %% [markdown]
# ## 2. A tubelet embedding is one matrix product
#
# A `Conv3d` with kernel $(t, h, w)$ and the same stride computes, at output position $(a, r, s)$,
#
# $$z_d = b_d + \sum_{c,\tau,i,j} W_{d,c,\tau,i,j}\; x_{c,\;at+\tau,\;rh+i,\;sw+j}.$$
#
# The stride equals the kernel, so the boxes do not overlap: every pixel is used by exactly one
# output position, and each output is the dot product of the filter with *one* tubelet. Flatten the
# tubelet into a vector of length $C\,t\,h\,w$ and the weight into a $D\times C t h w$ matrix **in
# the same order** and the whole layer is $z = W_\text{flat}\,x_\text{flat} + b$: a linear
# layer on flattened tubelets. The order must be the weight's, $(C, t, h, w)$ — channel slowest,
# column fastest. Symbolically, for a small tubelet with every weight and pixel a symbol:

# %%
derivations.get("ch04.conv_as_matmul").verify()

# %% [markdown]
# And numerically, on random videos whose sizes are not multiples of the tubelet (so the
# leftovers are dropped on both sides), in float64:

# %%
tub = (2, 4, 4)
emb = TubeletEmbedding(3, 16, tub)
W_flat = emb.proj.weight.reshape(16, -1)  # (D, C·t·h·w), rows in (C, t, h, w) order
assert W_flat.shape == (16, 3 * 2 * 4 * 4)


def random_video(gen):
    T_, H_, W_ = (int(torch.randint(lo, lo + 5, (1,), generator=gen)) for lo in (2, 4, 4))
    return [torch.randn(2, T_, 3, H_, W_, generator=gen)]  # (B, T, C, H, W)


def by_conv3d(v):
    return emb(v)  # (B, n_t, n_h·n_w, D)


def by_matmul(v):
    flat = tubelet_tokens(v, tub)  # (B, n_t, n_h, n_w, C·t·h·w)
    return (flat @ W_flat.T + emb.proj.bias).flatten(2, 3)  # (B, n_t, n_h·n_w, D)


with torch.no_grad():
    check_identity(by_conv3d, by_matmul, make_inputs=random_video, n_trials=8, name="Conv3d(stride=kernel) == flat @ W_flatᵀ + b").raise_if_failed()

# %% [markdown]
# The order is not a detail. Our videos are stored `(B, T, C, H, W)`, so the "natural" flatten
# of a tubelet lists frame first, then channel: $(t, C, h, w)$. It has the right length and
# gives numbers of the right size — and wrong ones:

# %%
def by_matmul_time_first(v):
    B_, T_, C_, H_, W_ = v.shape
    n_t, n_h, n_w = token_grid(T_, H_, W_, tub)
    t, h, w = tub
    tubes = v[:, : n_t * t, :, : n_h * h, : n_w * w].reshape(B_, n_t, t, C_, n_h, h, n_w, w)
    flat = tubes.permute(0, 1, 4, 6, 2, 3, 5, 7).reshape(B_, n_t, n_h, n_w, -1)  # (t, C, h, w) order
    return (flat @ W_flat.T + emb.proj.bias).flatten(2, 3)


with torch.no_grad():
    wrong = check_identity(by_conv3d, by_matmul_time_first, make_inputs=random_video, name="(t, C, h, w) flatten")
print(wrong.message)
assert not wrong.ok and wrong.max_abs_error > 0.1

# %% [markdown]
# The matrix view also counts the parameters: $D\cdot C t h w + D$. For ViViT-B ($D = 768$,
# 2×16×16 RGB tubelets) that is $768\cdot1536 + 768$.

# %%
vivit_b = TubeletEmbedding(3, 768, (2, 16, 16))
n_params = sum(p.numel() for p in vivit_b.parameters())
assert n_params == 768 * (3 * 2 * 16 * 16) + 768
print(f"ViViT-B tubelet embedding: {n_params:,} parameters")

# %% [markdown]
# ## 3. How many tokens?
#
# Along each axis, a convolution with kernel $k$, stride $s$ and padding $p$ turns length $L$ into
# $\lfloor (L + 2p - k)/s\rfloor + 1$ outputs. With no padding and $s = k$ this is $\lfloor L/k\rfloor$:
# the last $L \bmod k$ frames (rows, columns) do not fill a tubelet and are **dropped**. The product
# over the three axes is the sequence length $N$:

# %%
derivations.get("ch04.token_count").verify()

# %% [markdown]
# Now for the configurations you meet in practice. `token_grid` computes the grid; we check it
# against the derived formula, and against the shape an actual embedding produces. Attention
# compares every token with every other, so its cost grows with $N^2$.

# %%
formula = derivations.get("ch04.token_count").expressions[2]  # floor(T/t)·floor(H/h)·floor(W/w)
print(f"formula: N = {formula}")
configs = [  # (name, T, H, W, (t, h, w))
    ("ViViT 32 frames, 2×16×16", 32, 224, 224, (2, 16, 16)),
    ("16 frames, 2×16×16", 16, 224, 224, (2, 16, 16)),
    ("uniform sampling 8 frames, 1×16×16", 8, 224, 224, (1, 16, 16)),
    ("uniform sampling 32 frames, 1×16×16", 32, 224, 224, (1, 16, 16)),
    ("32 frames at 320×320, 2×16×16", 32, 320, 320, (2, 16, 16)),
    ("odd sizes: 15×230×239, 2×16×16", 15, 230, 239, (2, 16, 16)),
]
print(f"{'configuration':38s} {'grid':>12s} {'N':>6s} {'dropped (T, H, W)':>18s} {'N² (attention pairs)':>21s}")
counts = {}
for name, T_, H_, W_, (t, h, w) in configs:
    grid = token_grid(T_, H_, W_, (t, h, w))
    values = {"T": T_, "H": H_, "W": W_, "t": t, "h": h, "w": w}
    assert grid.n_tokens == int(formula.subs({s: values[s.name] for s in formula.free_symbols}))
    with torch.no_grad():  # D = 1 keeps this cheap; the grid does not depend on D
        shape = TubeletEmbedding(3, 1, (t, h, w))(torch.zeros(1, T_, 3, H_, W_)).shape
    assert shape == (1, grid.n_t, grid.n_h * grid.n_w, 1)
    dropped = (T_ % t, H_ % h, W_ % w)
    counts[name] = grid.n_tokens
    print(f"{name:38s} {str(tuple(grid)):>12s} {grid.n_tokens:6d} {str(dropped):>18s} {grid.n_tokens**2:21,d}")

assert counts["ViViT 32 frames, 2×16×16"] == 3136
# 8 sampled frames and 16 frames in 2-frame tubelets: the same sequence length, twice the time covered
assert counts["16 frames, 2×16×16"] == counts["uniform sampling 8 frames, 1×16×16"] == 1568
# same clip, t = 1 instead of 2: twice the tokens, four times the attention pairs
assert counts["uniform sampling 32 frames, 1×16×16"] == 2 * counts["ViViT 32 frames, 2×16×16"]

# %% [markdown]
# The odd-sized clip loses its last frame, the bottom 6 rows and the right 15 columns; nothing
# warns you, so pick sizes that are multiples of the tubelet (or pad on purpose). A clip smaller
# than one tubelet has no tokens at all, and the library says so:

# %%
try:
    token_grid(1, 224, 224, (2, 16, 16))
    raise AssertionError("a 1-frame clip cannot fill a 2-frame tubelet")
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# ## 4. Starting from an image model: inflation vs central frame
#
# A pretrained image ViT has a 2D patch embedding $W^{2D}$ of shape $(D, C, h, w)$. A tubelet
# embedding needs $(D, C, t, h, w)$. Two ways to fill the extra axis:
#
# * **inflation** (as in I3D): copy the 2D filter to every frame and divide by $t$,
#   $W_\tau = W^{2D}/t$;
# * **central frame** (ViViT): put the 2D filter at the middle frame $\tau = \lfloor t/2\rfloor$
#   and zeros elsewhere, $W_\tau = \delta_{\tau,\lfloor t/2\rfloor}\,W^{2D}$.
#
# On a **static** video — all $t$ frames the same frame $x$ — both give exactly the image model's
# response. Per tap (the full response is a sum of such terms):

# %%
derivations.get("ch04.inflation_static").verify()

# %%
derivations.get("ch04.central_frame_static").verify()

# %% [markdown]
# Numerically, on random filters, biases and frames, for several $t$: a static clip through either
# initialisation gives the 2D patch embedding of its frame, at every time step.

# %%
def static_case(gen, t):
    w2d = torch.randn(8, 3, 4, 4, generator=gen)  # (D, C, h, w)
    b = torch.randn(8, generator=gen)  # (D,)
    frame = torch.randn(2, 3, 12, 8, generator=gen)  # (B, C, H, W)
    return [w2d, b, frame]


for t in (2, 3, 4):
    for init in ("inflate", "central"):

        def tubelet_on_static(w2d, b, frame, t=t, init=init):
            clip = frame.unsqueeze(1).expand(-1, 2 * t, -1, -1, -1)  # (B, 2t, C, H, W): the frame, held still
            return TubeletEmbedding.from_patch_embedding(w2d, b, t, init=init)(clip)  # (B, 2, n_h·n_w, D)

        def image_model(w2d, b, frame):
            z = F.conv2d(frame, w2d, b, stride=4).flatten(2).transpose(1, 2)  # (B, n_h·n_w, D)
            return torch.stack([z, z], dim=1)  # the same at both time steps

        with torch.no_grad():
            check_identity(
                tubelet_on_static,
                image_model,
                make_inputs=lambda gen, t=t: static_case(gen, t),
                name=f"{init}, t={t}: static video == 2D patch embedding",
            ).raise_if_failed()
print("inflation and central-frame init reproduce the 2D embedding on static clips (t = 2, 3, 4)")

# %% [markdown]
# On a **moving** video they part ways, and the weights say exactly how. Inflation's response is
# the *mean* of the $t$ per-frame 2D responses — a temporal box blur. The central frame's response
# is the 2D response of frame $\lfloor t/2\rfloor$ of each tubelet — the other $t-1$ frames are
# ignored until training gives their weights something other than zero.

# %%
t = 4


def per_frame_2d(w2d, v):
    z = F.conv2d(v.flatten(0, 1), w2d, stride=4)  # (B·T, D, n_h, n_w)
    return z.flatten(2).transpose(1, 2).reshape(v.shape[0], v.shape[1], -1, w2d.shape[0])  # (B, T, n_h·n_w, D)


def moving_case(gen):
    return [torch.randn(6, 3, 4, 4, generator=gen), torch.randn(2, 8, 3, 8, 8, generator=gen)]  # filter; (B, T, C, H, W)


with torch.no_grad():
    check_identity(
        lambda w2d, v: TubeletEmbedding.from_patch_embedding(w2d, None, t, init="inflate")(v),
        lambda w2d, v: per_frame_2d(w2d, v).unflatten(1, (-1, t)).mean(2),  # mean over each tubelet's t frames
        make_inputs=moving_case,
        name="inflation == mean of the per-frame 2D responses",
    ).raise_if_failed()
    check_identity(
        lambda w2d, v: TubeletEmbedding.from_patch_embedding(w2d, None, t, init="central")(v),
        lambda w2d, v: per_frame_2d(w2d, v)[:, t // 2 :: t],  # frames t//2, t + t//2, ...
        make_inputs=moving_case,
        name="central frame == the 2D response of each tubelet's middle frame",
    ).raise_if_failed()

# %% [markdown]
# A concrete case makes the difference visible. A one-pixel-wide vertical bar, $h = 8$ pixels
# tall, moves right one column per frame over an $8\times 8$ canvas: in frame $f$ it is in column
# $f$. The image model is a bank of $D = 8$ bar detectors: filter $d$ has weight 1 on column $d$
# of the $8\times8$ patch and 0 elsewhere, so its 2D response to a frame is $h = 8$ if the bar is in
# column $d$ and 0 otherwise. With $t = 4$, the first tubelet holds frames 0–3, and the bar visits
# columns 0, 1, 2, 3. From the two identities above:
#
# * inflation: $\tfrac1t\sum_\tau 8\,[\text{bar in column } d \text{ at frame } \tau] = 8/4 = 2$ for
#   each $d \in \{0,1,2,3\}$, 0 elsewhere — a smeared bar, total response $4\cdot 2 = 8$;
# * central frame: the 2D response of frame $\lfloor 4/2\rfloor = 2$ — 8 at $d = 2$, 0 elsewhere.
#
# On the static clip (frame 2 held for all four frames) both give 8 at $d = 2$.

# %% mystnb={"image": {"alt": "Three bar charts of the first tubelet's response of each detector d (a bar in column d), one panel per initialisation and clip compared."}}
Tb, Hb, Wb, h = 8, 8, 8, 8
bar_video = torch.zeros(1, Tb, 1, Hb, Wb)  # (B, T, C, H, W)
for f in range(Tb):
    bar_video[0, f, 0, :, f] = 1.0  # column f at frame f: moving right, 1 px per frame
static_bar = bar_video[:, 2:3].expand(-1, Tb, -1, -1, -1)  # frame 2, held still
detectors = torch.zeros(8, 1, h, Wb)  # (D, C, h, w)
for d in range(8):
    detectors[d, 0, :, d] = 1.0  # detector d: a bar in column d

responses = {}
with torch.no_grad():
    for init in ("inflate", "central"):
        emb_init = TubeletEmbedding.from_patch_embedding(detectors, None, t, init=init)
        for name, clip in (("moving", bar_video), ("static", static_bar)):
            responses[init, name] = emb_init(clip)[0, 0, 0]  # first tubelet, the one spatial patch: (D,)

columns = torch.arange(8)
expected_inflate = torch.where(columns < t, h / t, 0.0)  # 2 on the four visited columns
expected_central = torch.where(columns == t // 2, float(h), 0.0)  # 8 where the bar was at frame 2
assert torch.equal(responses["inflate", "moving"], expected_inflate)
assert torch.equal(responses["central", "moving"], expected_central)
assert torch.equal(responses["inflate", "static"], responses["central", "static"])
assert torch.equal(responses["central", "static"], expected_central)
# inflation spreads the same total response over the bar's path; central keeps it at one column
assert responses["inflate", "moving"].sum() == responses["central", "moving"].sum() == h
for key, r in responses.items():
    print(f"{key[0]:>8s} init, {key[1]:>6s} clip: {r.tolist()}")

fig, axes = plt.subplots(1, 3, figsize=(11, 2.8), sharey=True)
panels = [
    (("central", "static"), "static clip (both inits agree)"),
    (("inflate", "moving"), "moving bar, inflation"),
    (("central", "moving"), "moving bar, central frame"),
]
for ax, (key, title) in zip(axes, panels):
    ax.bar(columns.numpy(), responses[key].numpy())
    ax.set_title(title)
    ax.set_xlabel("detector d (bar in column d)")
axes[0].set_ylabel("response, first tubelet")
fig.tight_layout()
plt.show()

# %% [markdown]
# Which is better? Both start where the image model was, on still content. Inflation averages the
# frames, so at initialisation fast motion blurs; the central frame gives a sharp image of one
# frame per tubelet, as if it were uniform frame sampling with $t$-fold subsampling, and lets
# training decide what the other frames should contribute. In ViViT's ablations the central-frame
# initialisation worked best of the tubelet initialisations they tried.
#
# ## 5. Positions for tubelet tokens
#
# The tokens form a grid $(n_t, n_h n_w)$, so each needs a time *and* a space position. Three
# learned choices, for a grid of $n_t$ time steps and $N_s = n_h n_w$ patches:
#
# * **image embedding repeated over time**: one table of $N_s$ vectors (what a pretrained image
#   model has), added to every time step — $N_s D$ parameters, and no notion of time at all;
# * **separable**: $E[\tau, n] = E_\text{time}[\tau] + E_\text{space}[n]$ (chapter 2) —
#   $(n_t + N_s) D$ parameters;
# * **full**: one vector per token — $n_t N_s D$ parameters. ViViT uses this, initialised by
#   repeating the image table over time, so it *starts* as the first option and training
#   separates the time steps.

# %%
n_t, n_s, D = 4, 16, 24
tokens = torch.zeros(1, n_t, n_s, D)  # zero tokens: the output is the encoding itself
repeated = LearnedPositionalEncoding(n_s, D)  # (N_s, D) table, broadcast over the n_t time steps
separable = SeparableSpaceTimeEncoding(n_frames=n_t, n_patches=n_s, d_model=D)
with torch.no_grad():
    pos_repeated, pos_separable = repeated(tokens), separable(tokens)  # (1, n_t, N_s, D) each

# repeated: the same patch at different times gets the same position
assert all(torch.equal(pos_repeated[:, k], pos_repeated[:, 0]) for k in range(n_t))
# separable: every (time, patch) pair gets its own position
flat = pos_separable.reshape(n_t * n_s, D)
closest = torch.cdist(flat, flat).add(torch.eye(n_t * n_s) * 1e9).min()
assert closest > 1e-3
print(f"repeated: {n_t} time steps share each position; separable: all {n_t * n_s} positions distinct (closest {closest:.3f})")

# %% [markdown]
# Without a time component, attention cannot tell frame 0 from frame 3 by position; the only
# temporal signal left is what the tubelets themselves contain. The parameter counts, for a toy
# grid and for ViViT-B on 32×224×224 with 2×16×16 tubelets ($n_t = 16$, $N_s = 196$, $D = 768$):

# %%
def count_params(module):
    return sum(p.numel() for p in module.parameters())


for label, (nt, ns, d) in {"toy grid": (n_t, n_s, D), "ViViT-B": (16, 196, 768)}.items():
    sizes = {
        "repeated image": count_params(LearnedPositionalEncoding(ns, d)),
        "separable": count_params(SeparableSpaceTimeEncoding(nt, ns, d)),
        "full": count_params(LearnedPositionalEncoding(nt * ns, d)),
    }
    assert sizes == {"repeated image": ns * d, "separable": (nt + ns) * d, "full": nt * ns * d}
    print(f"{label:>9s} (n_t={nt}, N_s={ns}, D={d}): " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))

# the full table, initialised by repetition, starts out equal to the repeated image embedding
full = LearnedPositionalEncoding(n_t * n_s, D)
with torch.no_grad():
    full.table.copy_(repeated.table.repeat(n_t, 1))  # (n_t·N_s, D), time-major like the flattened tokens
    assert torch.equal(full(tokens.flatten(1, 2)).unflatten(1, (n_t, n_s)), pos_repeated)

# %% [markdown]
# ## Exercises
#
# Open `exercises/ex04_tubelets.py`: write the tubelet flatten in the $(C, t, h, w)$ order that
# makes `flat @ W.reshape(D, -1).T + b` equal the `Conv3d`, and the two initialisations from a 2D
# filter (inflation and central frame), each checked by `check(...)`.
#
# ## Summary
#
# - Uniform frame sampling embeds $n_f$ evenly spaced frames as images: each token sees one frame,
#   and the frames between samples are never seen. Tubelet embedding cuts $t\times h\times w$ boxes:
#   each token sees $t$ consecutive frames, and every frame is used.
# - A `Conv3d` with stride = kernel is a linear layer on flattened tubelets,
#   $z = W_\text{flat}\,x_\text{flat} + b$, provided the tubelet is flattened in the weight's
#   $(C, t, h, w)$ order; the $(t, C, h, w)$ order of a `(B, T, C, H, W)` video is wrong.
# - $N = \lfloor T/t\rfloor\lfloor H/h\rfloor\lfloor W/w\rfloor$; leftovers are dropped. 32×224×224
#   with 2×16×16 gives 3136 tokens; 16 frames with $t = 2$ and 8 sampled frames with $t = 1$ both give 1568.
# - From a 2D filter: inflation ($W^{2D}/t$ on every frame) and central frame ($W^{2D}$ at
#   $\lfloor t/2\rfloor$) both reproduce the image model exactly on static video; on motion,
#   inflation averages the $t$ frames and the central frame sees only the middle one.
# - Positions: a repeated image table ($N_s D$) cannot tell time steps apart; separable
#   ($(n_t + N_s) D$) and full ($n_t N_s D$) tables can.
