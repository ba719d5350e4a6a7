"""Exercise 2 — positional encoding: the sinusoidal table, the relative rotation, the dot product."""

from __future__ import annotations

import torch

from vidlearn.grading.questions import Case, DerivationQuestion, FunctionQuestion, Milestone, Misconception, pick, register
from vidlearn.positional import frequencies, relative_rotation, sinusoidal_encoding


def _pe(n_positions, d_model, base=10000.0):
    return sinusoidal_encoding(n_positions, d_model, base)  # float32, as the exercise asks


def _pe_cases() -> list[Case]:
    # the grader's cases keep each case's shape of problem with other sizes (see questions.pick)
    evens = range(4, 129, 2)
    return [
        Case((pick(201, 1, range(2, 6)), 2), label="one channel pair"),
        Case((pick(202, 10, range(8, 17)), pick(203, 16, evens)), label="a few positions"),
        Case((pick(204, 50, range(40, 81)), pick(205, 64, evens)), label="many positions, wide"),
        Case((pick(206, 7, range(5, 12)), pick(207, 6, range(6, 15, 4))), label="d not a power of two"),
        Case((pick(208, 20, range(12, 30)), pick(209, 8, evens)), {"base": float(pick(210, 100, range(50, 500)))},
             label="base given explicitly"),
    ]


def _pe_base_1000(n_positions, d_model, base=10000.0):
    return sinusoidal_encoding(n_positions, d_model, 1000.0 if base == 10000.0 else base)


def _pe_halves(n_positions, d_model, base=10000.0):
    angles = torch.arange(n_positions, dtype=torch.float64)[:, None] * frequencies(d_model, base)[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1).float()


def _pe_exponent_i_over_d(n_positions, d_model, base=10000.0):
    i = torch.arange(d_model // 2, dtype=torch.float64)
    angles = torch.arange(n_positions, dtype=torch.float64)[:, None] * base ** (-i / d_model)[None]
    pe = torch.empty(n_positions, d_model, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(angles), torch.cos(angles)
    return pe.float()


def _pe_swapped(n_positions, d_model, base=10000.0):
    pe = sinusoidal_encoding(n_positions, d_model, base)
    return pe.reshape(n_positions, d_model // 2, 2).flip(-1).reshape(n_positions, d_model)


register(
    FunctionQuestion(
        id="ex02.sinusoidal_encoding",
        name="sinusoidal_encoding",
        points=3,
        reference=_pe,
        make_cases=_pe_cases,
        atol=1e-5,
        rtol=1e-5,
        misconceptions=(
            Misconception(
                "base 1000",
                (
                    "Your slow channels turn ten times too fast: check the base.",
                    "Vaswani et al. use base 10000 (some tutorials print 1000; they are wrong).",
                ),
                fn=_pe_base_1000,
            ),
            Misconception(
                "sin and cos not interleaved",
                (
                    "Which channels hold the sines in yours?",
                    "Sines go in the even channels 0, 2, 4, ... and cosines in the odd ones 1, 3, 5, ...: "
                    "pe[:, 0::2] = sin, pe[:, 1::2] = cos, not two concatenated halves.",
                ),
                fn=_pe_halves,
            ),
            Misconception(
                "exponent i/d instead of 2i/d",
                (
                    "Check the frequencies: channel pair i should turn at base^(-2i/d).",
                    "The exponent is 2i/d where i counts channel pairs (0 .. d/2 - 1), so the last pair "
                    "has a wavelength close to 2π·base.",
                ),
                fn=_pe_exponent_i_over_d,
            ),
            Misconception(
                "sin and cos swapped",
                ("At position 0, which channels should be 0 and which 1?", "PE[p, 2i] = sin, PE[p, 2i+1] = cos."),
                fn=_pe_swapped,
            ),
        ),
        hints=("PE[p, 2i] = sin(p / base^(2i/d)), PE[p, 2i+1] = cos(p / base^(2i/d)); return float32.",),
    )
)


def _rotation_cases() -> list[Case]:
    return [
        Case((0, pick(211, 4, range(6, 33, 2))), label="k = 0"),
        Case((pick(212, 1, range(2, 9)), 2), label="one pair"),
        Case((pick(213, 5, range(3, 40)), pick(214, 8, range(10, 33, 2))), label="a positive offset"),
        Case((pick(215, -3, range(-40, -1)), pick(216, 16, range(4, 33, 2))), label="negative offset"),
        Case((pick(217, 2.5, [x + 0.5 for x in range(1, 20)]), pick(218, 6, range(4, 17, 2))),
             label="non-integer offset"),
        Case((pick(219, 7, range(2, 30)), pick(220, 8, range(4, 17, 2))), {"base": float(pick(221, 100, range(50, 500)))},
             label="base given explicitly"),
    ]


def _rotation_transposed(k, d_model, base=10000.0):
    return relative_rotation(k, d_model, base).T


def _rotation_wrong_frequencies(k, d_model, base=10000.0):
    return relative_rotation(k, d_model, base ** 0.5)


def _rotation_identity_cos(k, d_model, base=10000.0):
    w = frequencies(d_model, base) * k
    return torch.diag(torch.cos(w).repeat_interleave(2))


register(
    FunctionQuestion(
        id="ex02.relative_rotation",
        name="relative_rotation",
        points=3,
        reference=lambda k, d_model, base=10000.0: relative_rotation(k, d_model, base),
        make_cases=_rotation_cases,
        misconceptions=(
            Misconception(
                "rotates the wrong way",
                (
                    "Apply your R(k) to PE(t): do you land on PE(t+k) or on PE(t-k)?",
                    "Block i is [[cos ω_i k, sin ω_i k], [-sin ω_i k, cos ω_i k]] acting on (sin ω_i t, cos ω_i t).",
                ),
                fn=_rotation_transposed,
            ),
            Misconception(
                "wrong frequencies",
                (
                    "The rotation angle of pair i must match that pair's frequency in the encoding.",
                    "Angle of block i: ω_i·k with ω_i = base^(-2i/d), the same frequencies as sinusoidal_encoding.",
                ),
                fn=_rotation_wrong_frequencies,
            ),
            Misconception(
                "cosines only",
                (
                    "A rotation mixes the sin and cos channel of each pair.",
                    "Put ±sin(ω_i k) off the diagonal of each 2×2 block.",
                ),
                fn=_rotation_identity_cos,
            ),
        ),
        hints=("R(k) is block-diagonal with one 2×2 rotation per channel pair; return float64 of shape (d, d).",),
    )
)


_W = "base**(-2*i/d)"
register(
    DerivationQuestion(
        id="ex02.pe_dot_product",
        name="pe_dot_product_steps",
        points=2,
        start=f"Sum(sin({_W}*t)*sin({_W}*(t + k)) + cos({_W}*t)*cos({_W}*(t + k)), (i, 0, d/2 - 1))",
        target=f"Sum(cos({_W}*k), (i, 0, d/2 - 1))",
        assumptions={"d": "positive even integer", "i": "nonnegative integer", "t": "real", "k": "real", "base": "positive"},
        prompt="Starting from PE(t)·PE(t+k) written as a sum over channel pairs, show that it equals "
        "Σ_i cos(ω_i k), ω_i = base^(-2i/d): a function of the offset k alone.",
        misconceptions=(
            Misconception(
                "cos(a + b) instead of cos(a - b)",
                (
                    "Check the identity you used for cos a cos b + sin a sin b.",
                    "cos a cos b + sin a sin b = cos(a - b); the t's then cancel.",
                ),
                expr=f"Sum(cos({_W}*(2*t + k)), (i, 0, d/2 - 1))",
            ),
            Misconception(
                "only the k = 0 case",
                ("d/2 is the value at k = 0 (the squared norm), not for every k.", "Keep k: each pair gives cos(ω_i k)."),
                expr="d/2",
            ),
            Misconception(
                "sine instead of cosine",
                ("Which function is even: is PE(t)·PE(t+k) the same for k and -k?", "cos a cos b + sin a sin b = cos(a - b)."),
                expr=f"Sum(sin({_W}*k), (i, 0, d/2 - 1))",
            ),
        ),
        hints=("Use cos a cos b + sin a sin b = cos(a - b) inside the sum, then simplify the argument.",),
        milestones=(Milestone("cos a cos b + sin a sin b = cos(a - b) applied: a sum of cosines, no sine left",
                              has=("Sum", "cos"), free_of=("sin",)),),
    )
)
