"""The contrastive dual encoder: shapes, normalisation, temperature, padding, frame order,
a short training run on held-out clips, cost formulas against the counter, bad input."""

import math
import time

import numpy

import pytest
import sympy as sp
import torch
import torch.nn.functional as F

from vidlearn import derivations
from vidlearn.contrastive import symmetric_info_nce
from vidlearn.data import MovingShapesConfig, generate
from vidlearn.derive import check_identity
from vidlearn.dual_encoder import (
    DualEncoder,
    DualEncoderConfig,
    DualTrainConfig,
    dual_scores,
    encode_captions,
    retrieval_recall,
    train_dual_encoder,
)
from vidlearn.flops import (
    count_flops,
    dual_encoder_macs,
    dual_encoder_retrieval_macs,
    single_stream_macs,
    single_stream_retrieval_macs,
    text_tower_macs,
    video_tower_macs,
)
from vidlearn.videobert import JointVocabulary, VideoBERT, VideoBERTConfig, WordTokenizer, retrieval_scores

SMALL = dict(frames=8, video_depth=1, text_depth=1, width=32, mlp_width=64, heads=2, embed_dim=16)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # small matrices: one thread is faster, and immune to a busy second core
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(vocab_size=12, **kw):
    return DualEncoder(DualEncoderConfig(vocab_size=vocab_size, **{**SMALL, **kw})).eval()


def _text(B=3, L=5, vocab_size=12):
    ids = torch.randint(vocab_size, (B, L))  # (B, L)
    mask = torch.ones(B, L, dtype=torch.bool)  # (B, L)
    mask[0, 3:] = False
    return ids, mask


# --------------------------------------------------------------------------- shapes, norms, temperature


def test_shapes_and_unit_norm():
    m = _model()
    v = m.encode_video(torch.rand(4, 8, 3, 32, 32))
    t = m.encode_text(*_text())
    assert v.shape == (4, 16) and t.shape == (3, 16)
    assert torch.allclose(v.norm(dim=1), torch.ones(4), atol=1e-6)
    assert torch.allclose(t.norm(dim=1), torch.ones(3), atol=1e-6)


def test_forward_is_symmetric_info_nce_of_the_encodings():
    m = _model()
    video, (ids, mask) = torch.rand(3, 8, 3, 32, 32), _text()
    expected = symmetric_info_nce(m.encode_video(video), m.encode_text(ids, mask), m.temperature)
    assert torch.allclose(m(video, ids, mask), expected)


def test_temperature_starts_at_clip_value_is_learnable_and_clamped():
    m = _model()
    assert m.temperature.item() == pytest.approx(0.07, rel=1e-6)
    assert m.log_temperature.item() == pytest.approx(math.log(0.07), rel=1e-6)
    m(torch.rand(3, 8, 3, 32, 32), *_text()).backward()
    assert m.log_temperature.grad is not None and m.log_temperature.grad.item() != 0
    with torch.no_grad():
        m.log_temperature.fill_(-20.0)
    assert m.temperature.item() == pytest.approx(0.01, rel=1e-6)  # CLIP's cap: logit scale <= 100
    with torch.no_grad():
        m.log_temperature.fill_(5.0)
    assert m.temperature.item() == pytest.approx(1.0, rel=1e-6)


def test_text_tower_ignores_padding():
    m = _model()
    ids, mask = _text(B=2, L=4)
    mask[:] = True
    base = m.encode_text(ids, mask)
    # the same captions padded to 7 with arbitrary ids at the padded positions
    padded = torch.cat([ids, torch.randint(12, (2, 3))], dim=1)  # (2, 7)
    pmask = torch.cat([mask, torch.zeros(2, 3, dtype=torch.bool)], dim=1)  # (2, 7)
    assert torch.allclose(m.encode_text(padded, pmask), base, atol=1e-6)
    other = padded.clone()
    other[:, 4:] = (other[:, 4:] + 5) % 12
    assert torch.allclose(m.encode_text(other, pmask), base, atol=1e-6)


def test_text_tower_sees_word_order():
    m = _model()
    ids = torch.tensor([[1, 2, 3, 4]])
    mask = torch.ones(1, 4, dtype=torch.bool)
    assert not torch.allclose(m.encode_text(ids, mask), m.encode_text(ids.flip(1), mask), atol=1e-4)


def test_video_tower_uses_frame_order():
    m = _model()
    clips = generate(MovingShapesConfig(n_frames=8, speeds=(1,)), 4, seed=0).video  # (4, 8, 3, 32, 32)
    forward, backward = m.encode_video(clips), m.encode_video(clips.flip(1))
    assert (forward - backward).norm(dim=1).min() > 1e-3
    # the time embedding is what breaks the symmetry between tubelets: with it zeroed and
    # one-frame tubelets, attention plus mean pooling cannot tell the order
    m1 = _model(tubelet=(1, 8, 8))
    with torch.no_grad():
        m1.time_embed.zero_()
    assert torch.allclose(m1.encode_video(clips), m1.encode_video(clips.flip(1)), atol=1e-5)


# --------------------------------------------------------------------------- the loss's gradient


def test_logit_gradient_is_softmax_minus_one_hot_over_b():
    def autograd_grad(S):
        S = S.clone().requires_grad_(True)
        F.cross_entropy(S, torch.arange(S.shape[0])).backward()
        return S.grad

    def closed_form(S):
        return (S.softmax(dim=1) - torch.eye(S.shape[0], dtype=S.dtype)) / S.shape[0]

    for B in (2, 3, 7):
        assert check_identity(autograd_grad, closed_form, shapes=[(B, B)], name=f"InfoNCE gradient B={B}").ok


def test_symmetric_gradient_is_the_mean_of_both_directions():
    def autograd_grad(v, t):
        S = (F.normalize(v, dim=-1) @ F.normalize(t, dim=-1).T / 0.1).detach().requires_grad_(True)
        target = torch.arange(S.shape[0])
        ((F.cross_entropy(S, target) + F.cross_entropy(S.T, target)) / 2).backward()
        return S.grad

    def closed_form(v, t):
        S = F.normalize(v, dim=-1) @ F.normalize(t, dim=-1).T / 0.1
        B, eye = S.shape[0], torch.eye(S.shape[0], dtype=S.dtype)
        return ((S.softmax(dim=1) - eye) + (S.softmax(dim=0) - eye)) / (2 * B)

    assert check_identity(autograd_grad, closed_form, shapes=[(5, 4), (5, 4)]).ok


@pytest.mark.parametrize("name", ["ch07.info_nce_logit_gradient", "ch07.info_nce_equal_embeddings"])
def test_derivations_verify(name):
    assert derivations.get(name).check().ok


# --------------------------------------------------------------------------- training on the captioned clips


@pytest.fixture(scope="module")
def trained():
    data = MovingShapesConfig(n_frames=8, speeds=(1,))  # 18 captions, as chapter 6 (with 8 frames)
    train, test = generate(data, 512, seed=1), generate(data, 180, seed=2)
    tok = WordTokenizer.from_texts(train.captions)
    config = DualTrainConfig(steps=150, batch_size=32, lr=2e-3, seed=0)
    torch.manual_seed(0)
    model = DualEncoder(DualEncoderConfig(vocab_size=len(tok), **SMALL))
    start = time.perf_counter()
    history = train_dual_encoder(model, train, tok, config, progress=False)
    seconds = time.perf_counter() - start
    return model, history, tok, train, test, config, seconds


def test_training_beats_chance_on_held_out_clips(trained):
    model, history, tok, _, test, _, seconds = trained
    assert len(history["loss"]) == 150 and len(history["temperature"]) == 150
    assert sum(history["loss"][-10:]) / 10 < history["loss"][0] - 1.0
    r = retrieval_recall(model, test, tok)
    assert r["chance t2v@1"] == pytest.approx(1 / 18) and r["chance v2t@1"] == pytest.approx(1 / 18)
    for key in ("t2v@1", "v2t@1", "t2v@5", "v2t@5"):
        assert r[key] > 3 * r[f"chance {key}"] or r[key] == 1.0, (key, r)
    assert seconds < 60  # about 3-5 s on one idle core; the bound only catches a runaway


def test_training_is_deterministic_from_the_seed(trained):
    _, history, tok, train, _, _, _ = trained
    short = DualTrainConfig(steps=5, batch_size=16, seed=3)
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        model = DualEncoder(DualEncoderConfig(vocab_size=len(tok), **SMALL))
        runs.append(train_dual_encoder(model, train, tok, short, progress=False)["loss"])
    assert runs[0] == runs[1]


def test_dual_scores_rank_like_the_embeddings(trained):
    model, _, tok, _, test, _, _ = trained
    ids, mask = encode_captions(tok, test.captions[:4], model.config.max_text_len)
    scores = dual_scores(model, ids, mask, test.video[:6])  # (4, 6)
    with torch.no_grad():
        expected = model.encode_text(ids, mask) @ model.encode_video(test.video[:6]).T / model.temperature
    assert scores.shape == (4, 6) and torch.allclose(scores, expected, atol=1e-5)


# --------------------------------------------------------------------------- cost formulas = counter


@pytest.mark.parametrize("Q,M,L,depths", [(3, 5, 6, (1, 1)), (1, 4, 5, (2, 1)), (4, 2, 3, (1, 2))])
def test_dual_encoder_retrieval_formula_equals_counter(Q, M, L, depths):
    config = DualEncoderConfig(vocab_size=11, **{**SMALL, "video_depth": depths[0], "text_depth": depths[1]})
    m = DualEncoder(config)
    ids = torch.randint(11, (Q, L))
    mask = torch.ones(Q, L, dtype=torch.bool)
    mask[0, L - 1 :] = False  # padding still costs: masked keys are computed, then ignored
    video = torch.rand(M, 8, 3, 32, 32)
    assert count_flops(dual_scores, m, ids, mask, video) == 2 * dual_encoder_macs(config, Q, M, L)
    # the pieces: towers once per video and per query, then Q·M dot products of width E
    video_only = count_flops(m.encode_video, video)
    text_only = count_flops(m.encode_text, ids, mask)
    g = config.grid
    assert video_only == 2 * M * int(video_tower_macs(g.n_t * g.n_h * g.n_w, 3 * 2 * 8 * 8, 32, 64, depths[0], 16))
    assert text_only == 2 * Q * int(text_tower_macs(L, 32, 64, depths[1], 16))


@pytest.mark.parametrize("Q,M,n_words,n_visual", [(2, 4, 3, 4), (3, 2, 5, 2)])
def test_single_stream_retrieval_formula_equals_counter(Q, M, n_words, n_visual):
    config = VideoBERTConfig(vocab_size=30, max_len=16, width=32, depth=2, heads=2, mlp_width=64)
    bert = VideoBERT(config)
    vocab = JointVocabulary(["a", "b", "c", "d", "e"], 20)
    texts = [torch.randint(5, (n_words,)).tolist() for _ in range(Q)]
    visual = torch.randint(20, (M, n_visual))
    joint = n_words + n_visual + 3  # [CLS] text [>] video [SEP]
    assert count_flops(retrieval_scores, bert, texts, visual, vocab) == 2 * single_stream_macs(config, Q, M, joint)


def test_cost_per_query_grows_with_the_gallery_only_through_dot_products():
    Q, M, V, X, E = sp.symbols("Q M V X E", positive=True, integer=True)
    dual = dual_encoder_retrieval_macs()
    assert sp.expand(dual - (M * V + Q * X + Q * M * E)) == 0
    # with the gallery indexed (M·V paid once), one more video costs each query E MACs
    assert sp.diff(sp.diff(dual, M), Q) == E
    single = single_stream_retrieval_macs()
    assert sp.simplify(sp.diff(sp.diff(single, M), Q) - single / (Q * M)) == 0  # one more video: a full joint pass per query


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(vocab_size=0), "vocab_size"),
        (dict(vocab_size=5, width=30, heads=4), "heads"),
        (dict(vocab_size=5, tubelet=(2, 8)), "tubelet"),
        (dict(vocab_size=5, tubelet=(2, 64, 64)), "tubelet"),
        (dict(vocab_size=5, init_temperature=0.0), "temperature"),
        (dict(vocab_size=5, init_temperature=2.0), "temperature"),
        (dict(vocab_size=5, min_temperature=float("nan")), "temperature"),
        (dict(vocab_size=True), "vocab_size"),
    ],
)
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        DualEncoderConfig(**kw)


def test_bad_inputs_are_named():
    m = _model()
    ids, mask = _text()
    with pytest.raises(ValueError, match="DualEncoderConfig"):
        DualEncoder({"vocab_size": 3})
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        m.encode_video(torch.rand(8, 3, 32, 32))
    with pytest.raises(ValueError, match="T, C, H, W"):
        m.encode_video(torch.rand(2, 6, 3, 32, 32))
    with pytest.raises(ValueError, match="float"):
        m.encode_video(torch.zeros(2, 8, 3, 32, 32, dtype=torch.long))
    with pytest.raises(ValueError, match="ids must lie"):
        m.encode_text(ids + 12, mask)
    with pytest.raises(ValueError, match="integer"):
        m.encode_text(ids.float(), mask)
    with pytest.raises(ValueError, match="max_text_len"):
        m.encode_text(torch.zeros(1, 9, dtype=torch.long), torch.ones(1, 9, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be bool"):
        m.encode_text(ids, mask.long())
    with pytest.raises(ValueError, match="at least one real word"):
        m.encode_text(ids, torch.zeros_like(mask))
    with pytest.raises(ValueError, match="pairs must match"):
        m(torch.rand(2, 8, 3, 32, 32), ids, mask)
    with pytest.raises(ValueError, match="model's weights are torch.float32"):
        m.encode_video(torch.rand(2, 8, 3, 32, 32, dtype=torch.float64))
    with pytest.raises(ValueError, match="integer tensor"):
        m.encode_text(ids.to(torch.uint8), mask)


def test_bad_training_and_caption_inputs():
    data = generate(MovingShapesConfig(n_frames=8, speeds=(1,)), 8, seed=0)
    tok = WordTokenizer.from_texts(data.captions + ["a red green blue square circle triangle moves left right"])
    m = DualEncoder(DualEncoderConfig(vocab_size=len(tok), **SMALL))
    with pytest.raises(ValueError, match="batch_size"):
        DualTrainConfig(batch_size=1)
    with pytest.raises(ValueError, match="lr"):
        DualTrainConfig(lr=0)
    with pytest.raises(ValueError, match="lr"):
        DualTrainConfig(lr=float("inf"))
    with pytest.raises(ValueError, match="weight_decay"):
        DualTrainConfig(weight_decay="x")
    with pytest.raises(ValueError, match="larger than"):
        train_dual_encoder(m, data, tok, DualTrainConfig(batch_size=16), progress=False)
    with pytest.raises(ValueError, match="VideoBatch"):
        train_dual_encoder(m, data.video, tok, DualTrainConfig(batch_size=4), progress=False)
    with pytest.raises(ValueError, match="DualEncoder"):
        train_dual_encoder(torch.nn.Linear(2, 2), data, tok, progress=False)
    with pytest.raises(ValueError, match="single string"):
        encode_captions(tok, "a red square moves left")
    with pytest.raises(ValueError, match="unknown word"):
        encode_captions(tok, ["a purple square"])
    with pytest.raises(ValueError, match="max_len"):
        encode_captions(tok, data.captions[:2], max_len=2)
    ids, mask = encode_captions(tok, ["a red square moves left", "a blue circle moves"])
    assert ids.shape == mask.shape == (2, 5) and mask.sum(1).tolist() == [5, 4] and ids[1, 4] == 0


# --------------------------------------------------------------------------- weight decay, bad inputs


def test_weight_decay_leaves_the_temperature_alone():
    from vidlearn.dual_encoder import _DualOptimiser

    model = _model()
    config = DualTrainConfig(steps=3, batch_size=2, weight_decay=0.5)
    opt = _DualOptimiser(model, config)
    groups = {id(p): g["weight_decay"] for g in opt.opt.param_groups for p in g["params"]}
    assert groups[id(model.log_temperature)] == 0.0
    assert all(groups[id(p)] == 0.5 for n, p in model.named_parameters() if n != "log_temperature")
    assert len(groups) == len(list(model.parameters()))  # every parameter once
    before = model.log_temperature.detach().clone()
    (0 * model.log_temperature).backward()  # zero gradient: only decay could move it
    opt.opt.step()
    assert torch.equal(model.log_temperature.detach(), before)


def _video(M=2, frames=8):
    return torch.rand(M, frames, 3, 32, 32)


BAD_SCORES = [
    (dict(batch_size=2.5), "batch_size"), (dict(batch_size=-1), "batch_size"), (dict(batch_size=0), "batch_size"),
    (dict(batch_size=True), "batch_size"), (dict(ids=None), "ids"), (dict(mask=None), "mask"),
    (dict(video=None), "video"), (dict(ids=torch.zeros(0, 5, dtype=torch.long), mask=torch.ones(0, 5, dtype=torch.bool)), "B >= 1"),
    (dict(video=torch.rand(0, 8, 3, 32, 32)), "B >= 1"), (dict(model=None), "model"),
]


@pytest.mark.parametrize("bad, message", BAD_SCORES, ids=[m + str(i) for i, (_, m) in enumerate(BAD_SCORES)])
def test_dual_scores_refuses_bad_input_by_name(bad, message):
    ids, mask = _text()
    args = dict(model=_model(), ids=ids, mask=mask, video=_video(), batch_size=256) | bad
    with pytest.raises(ValueError, match=message):
        dual_scores(args.pop("model"), args.pop("ids"), args.pop("mask"), args.pop("video"), **args)


@pytest.fixture(scope="module")
def _clips():
    data = MovingShapesConfig(n_frames=8, speeds=(1,))
    clips = generate(data, 6, seed=1)
    return clips, WordTokenizer.from_texts(clips.captions)


BAD_RECALL = [(dict(ks=1), "ks"), (dict(ks=()), "ks"), (dict(ks="15"), "ks"), (dict(ks=(1, 0)), "k"),
              (dict(ks=(1.5,)), "k"), (dict(ks=(True,)), "k"), (dict(ks=None), "ks"), (dict(clips=None), "clips"),
              (dict(model=None), "model"), (dict(tokenizer=None), "tokenizer")]


@pytest.mark.parametrize("bad, message", BAD_RECALL, ids=[m + str(i) for i, (_, m) in enumerate(BAD_RECALL)])
def test_retrieval_recall_refuses_bad_input_by_name(_clips, bad, message):
    clips, tok = _clips
    args = dict(model=_model(vocab_size=len(tok)), clips=clips, tokenizer=tok, ks=(1, 5)) | bad
    with pytest.raises(ValueError, match=message):
        retrieval_recall(args["model"], args["clips"], args["tokenizer"], args["ks"])


BAD_SIZES = [(dict(Q=-1), "Q"), (dict(text_len=0, joint_len=0), "_len"), (dict(Q=2.0), "Q"), (dict(Q=True), "Q"), (dict(M=-3), "M"),
             (dict(M=1.5), "M"), (dict(M=False), "M"), (dict(M=None), "M"), (dict(config=None), "config")]


@pytest.mark.parametrize("bad, message", BAD_SIZES, ids=[m + str(i) for i, (_, m) in enumerate(BAD_SIZES)])
def test_retrieval_costs_refuse_bad_sizes_by_name(bad, message):
    dual = dict(config=DualEncoderConfig(vocab_size=12, **SMALL), Q=2, M=3, text_len=5) | bad
    with pytest.raises(ValueError, match=message):
        dual_encoder_macs(dual["config"], dual["Q"], dual["M"], dual["text_len"])
    single = dict(config=VideoBERTConfig(vocab_size=20, max_len=16), Q=2, M=3, joint_len=9) | bad
    with pytest.raises(ValueError, match=message):
        single_stream_macs(single["config"], single["Q"], single["M"], single["joint_len"])
    with pytest.raises(ValueError, match="config"):  # each function wants its own model's config
        dual_encoder_macs(VideoBERTConfig(vocab_size=20, max_len=16), 1, 1, 5)


def test_retrieval_costs_allow_an_empty_side():  # chapter 7 prices indexing the gallery alone as Q = 0
    config = DualEncoderConfig(vocab_size=12, **SMALL)
    assert dual_encoder_macs(config, 0, 3, 5) > 0 and single_stream_macs(VideoBERTConfig(vocab_size=20, max_len=16), 0, 3, 9) == 0


# ---- review of issue 14: more bad input, each named


@pytest.mark.parametrize("captions, max_len, message", [
    (None, None, "non-empty sequence"), ((c for c in ["a"]), None, "non-empty sequence"),
    (b"red", None, "non-empty sequence"), ("red square", None, "a single string"),
    ([1, 2], None, "every caption must be a string"), (["red square"], "5", "max_len must be a positive integer"),
    (["red square"], 0, "max_len must be a positive integer"),
])
def test_encode_captions_names_bad_input(captions, max_len, message):
    tok = WordTokenizer.from_texts(["red square", "blue circle"])
    with pytest.raises(ValueError, match=message):
        encode_captions(tok, captions, max_len)


@pytest.mark.parametrize("args", [(-1, 5, 3, 2, 1), (2.5, 1, 1, 1, 1), (None,), (True, 1, 1, 1, 1), ("N M",)])
def test_raw_cost_formulas_refuse_sizes_that_are_not_counts(args):
    with pytest.raises(ValueError, match="a size must be|symbolic size must be a name"):
        dual_encoder_retrieval_macs(*args)
    with pytest.raises(ValueError, match="a size must be|symbolic size must be a name"):
        single_stream_retrieval_macs(*args)


def test_cost_of_a_sequence_longer_than_the_model_takes_is_refused():
    dual = DualEncoderConfig(vocab_size=12, **SMALL)
    bert = VideoBERTConfig(vocab_size=30, max_len=16)
    with pytest.raises(ValueError, match="text_len=.* longer than the model takes"):
        dual_encoder_macs(dual, 1, 1, dual.max_text_len + 1)
    with pytest.raises(ValueError, match="joint_len=17 is longer than the model takes"):
        single_stream_macs(bert, 1, 1, 17)
    assert single_stream_macs(bert, numpy.int64(2), 3, 16) == single_stream_macs(bert, 2, 3, 16)  # numpy counts are counts
