"""ViViT's four variants: cost by formula, by torch's FLOP counter and in the paper; CPU time.

Part 1, for ViViT-B/16x2 (32×224×224 clips, 2×16×16 tubelets, d=768, L=12, 12 heads, MLP 3072):
parameters and GMACs from ``vidlearn.flops`` (the formula), from ``FlopCounterMode`` on a model
built on the ``meta`` device (shapes only, so the full-size count takes a second), and from the
paper's Table 2 (whose "FLOPs" are MACs). Every model computes only the pairs it attends to
(Model 4 by reshaping its two head groups, not by masking joint attention), so formula and
counter agree exactly; "masked M4" adds what Model 4 would multiply as masked joint attention.

Part 2: forward time per clip (median of ``--repeats`` runs after a warm-up, batch ``--batch``,
float32, no grad) of each variant on a small config as the number of frames grows, next to its
MACs, and the time per MMAC. Timings depend on the machine and its load; the MAC column does not.

Run::

    python benchmarks/vivit.py
    python benchmarks/vivit.py --frames 4 8 16 32 64 --width 64 --depth 4 --threads 1
"""

from __future__ import annotations

import argparse

import torch

from vidlearn.flops import count_flops, forward_seconds, vivit_macs, vivit_params
from vidlearn.vivit import PAPER_TABLE_2, VARIANTS, ViViT, ViViTConfig

SHORT = {"joint": "M1 joint", "factorised_encoder": "M2 fact. encoder",
         "factorised_self_attention": "M3 fact. self-attn", "factorised_dot_product": "M4 fact. dot-prod",
         "ave_pool": "M2 ave. pool (L_t=0)"}


def base(variant: str) -> ViViTConfig:
    if variant == "ave_pool":
        return ViViTConfig.base_16x2("factorised_encoder", temporal_depth=0, pooling="mean")
    return ViViTConfig.base_16x2(variant)


def counted_macs_on_meta(config: ViViTConfig) -> int:
    with torch.device("meta"):
        model = ViViT(config)
        clip = torch.empty(1, config.frames, config.channels, config.image_size, config.image_size)
        return count_flops(model, clip) // 2


def cost_table() -> None:
    print("ViViT-B/16x2: parameters (M) and GMACs per clip")
    print(f"{'model':22s} {'params':>8s} {'paper':>6s} | {'formula':>8s} {'counter':>8s} {'paper':>6s} {'diff':>7s}")
    for v in [*VARIANTS, "ave_pool"]:
        c = base(v)
        paper_g, paper_m, _ = PAPER_TABLE_2[v]
        formula = vivit_macs(c)
        counter = counted_macs_on_meta(c)
        assert counter == formula, (v, counter, formula)  # formula = counter, exactly
        print(f"{SHORT[v]:22s} {vivit_params(c) / 1e6:8.2f} {paper_m:6.1f} | {formula / 1e9:8.1f} {counter / 1e9:8.1f}"
              f" {paper_g:6.1f} {100 * (formula / paper_g / 1e9 - 1):+6.2f}%")
    # the masked form of Model 4 computes every score of joint attention without a CLS token
    masked = vivit_macs(ViViTConfig.base_16x2("joint", pooling="mean"))
    print(f"{'masked M4 (reference)':22s} {'':8s} {'':6s} | {masked / 1e9:8.1f}   (joint attention under a per-head mask)\n")


def forward_ms(config: ViViTConfig, batch: int, repeats: int) -> float:
    torch.manual_seed(0)
    clip = torch.randn(batch, config.frames, config.channels, config.image_size, config.image_size)
    return 1e3 * forward_seconds(ViViT(config).eval(), clip, repeats=repeats) / batch


def time_table(args) -> None:
    sizes = dict(image_size=args.image_size, tubelet=(2, args.patch, args.patch), width=args.width,
                 depth=args.depth, heads=args.heads, mlp_width=2 * args.width)
    print(f"forward time per clip: {args.image_size}×{args.image_size} frames, 2×{args.patch}×{args.patch} "
          f"tubelets, d={args.width}, L={args.depth}, batch {args.batch}, {torch.get_num_threads()} threads")
    print(f"{'frames':>6s} {'tokens':>7s} | " + " | ".join(f"{SHORT[v]:>24s}" for v in VARIANTS))
    print(f"{'':>6s} {'':>7s} | " + " | ".join(f"{'MMACs':>7s} {'ms':>7s} {'ns/MAC':>8s}" for _ in VARIANTS))
    for T in args.frames:
        cells = []
        for v in VARIANTS:
            c = ViViTConfig.tiny(v, frames=T, **sizes)
            macs, ms = vivit_macs(c), forward_ms(c, args.batch, args.repeats)
            cells.append(f"{macs / 1e6:7.1f} {ms:7.2f} {1e6 * ms / macs:8.3f}")
        c = ViViTConfig.tiny("joint", frames=T, **sizes)
        print(f"{T:6d} {c.n_t * c.N:7d} | " + " | ".join(cells))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--patch", type=int, default=4)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cost_table()
    time_table(args)


if __name__ == "__main__":
    main()
