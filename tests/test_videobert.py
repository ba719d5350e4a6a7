"""VideoBERT: visual words by hierarchical k-means, one joint vocabulary, BERT masking, and a
single-stream model that learns to align captions with (synthetic) visual words."""

import itertools
import math

import pytest
import torch

from vidlearn.data import MovingShapesConfig, caption
from vidlearn.videobert import (
    HierarchicalKMeans,
    JointVocabulary,
    PretrainConfig,
    VideoBERT,
    VideoBERTConfig,
    WordTokenizer,
    alignment_accuracy,
    build_sequence,
    chance_recall,
    kmeans,
    mask_tokens,
    masked_token_accuracy,
    pad_batch,
    pretrain,
    recall_at_k,
    retrieval_scores,
)
from vidlearn.videobert.pairs import _other_caption
from vidlearn.videobert.visual_words import _lloyd_step


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # The models here are tiny: on a busy machine a second thread only adds synchronisation
    # (matrix products of 64-wide tensors ran ~100x slower with two threads than with one).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- k-means


def blobs(centres, n, spread, seed=0):
    """``n`` points around each row of ``centres (C, F)``: ``(C·n, F)`` float64 and the blob of each."""
    centres = torch.as_tensor(centres, dtype=torch.float64)
    noise = torch.randn(len(centres), n, centres.shape[1], generator=gen(seed), dtype=torch.float64)
    return (centres[:, None] + spread * noise).reshape(-1, centres.shape[1]), torch.arange(len(centres)).repeat_interleave(n)


def test_kmeans_recovers_separated_blobs_deterministically():
    x, blob = blobs([[0, 0], [10, 0], [0, 10]], 30, 0.5)
    c, a = kmeans(x, 3, generator=gen(1))
    # the same partition up to relabelling: each blob maps to one cluster, all different
    mapping = {int(b): set(a[blob == b].tolist()) for b in range(3)}
    assert all(len(s) == 1 for s in mapping.values()) and len(set.union(*mapping.values())) == 3
    for b in range(3):
        assert torch.allclose(c[a[blob == b][0]], x[blob == b].mean(0))
    c2, a2 = kmeans(x, 3, generator=gen(1))
    assert torch.equal(c, c2) and torch.equal(a, a2)


def test_kmeans_with_fewer_points_than_clusters_copies_centroids():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # 3 distinct points
    c, a = kmeans(x, 5, generator=gen())
    assert c.shape == (5, 2)
    assert {tuple(r) for r in c.tolist()} == {(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)}
    assert torch.equal(c[a], x)  # every point sits on its centroid
    assert torch.equal(kmeans(x[:1], 3, generator=gen())[0], x[:1].expand(3, 2))


def test_an_empty_cluster_is_reseeded_at_the_farthest_point():
    x = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
    c = torch.tensor([[1.0], [10.0], [100.0]])  # the third centroid wins no point
    # clusters {0, 1, 2} -> 1 and {10} -> 10; the point farthest from its centroid is 0 (or 2:
    # both at distance 1; the stable sort takes the first)
    assert _lloyd_step(x, c).tolist() == [[1.0], [10.0], [0.0]]
    # when every point already sits on a centroid, an empty cluster keeps its centroid
    assert _lloyd_step(x, torch.tensor([[0.0], [1.0], [2.0], [10.0], [50.0]]))[-1].item() == 50.0


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: kmeans(torch.zeros(3), 2, generator=gen()), r"\(M, F\)"),
        (lambda: kmeans(torch.zeros(3, 2, dtype=torch.long), 2, generator=gen()), "floating"),
        (lambda: kmeans(torch.full((3, 2), float("nan")), 2, generator=gen()), "NaN"),
        (lambda: kmeans(torch.zeros(3, 2), 0, generator=gen()), "k must"),
        (lambda: kmeans(torch.zeros(3, 2), 2, generator=0), "Generator"),
        (lambda: HierarchicalKMeans(1, 2), "at least 2"),
        (lambda: HierarchicalKMeans(2, 0), "depth"),
        (lambda: HierarchicalKMeans(2, 2, seed=1.5), "seed"),
        (lambda: HierarchicalKMeans(2, 2).assign(torch.zeros(3, 2)), "not fitted"),
        (lambda: HierarchicalKMeans(2, 2).fit(torch.zeros(5, 2)).assign(torch.zeros(3, 4)), "columns"),
        (lambda: HierarchicalKMeans(3, 2).path(9), r"\[0, 9\)"),
        (lambda: HierarchicalKMeans.from_levels([torch.zeros(2, 1), torch.zeros(3, 1)]), r"\(4, 1\)"),
    ],
)
def test_bad_clustering_inputs_raise(call, words):
    with pytest.raises(ValueError, match=words):
        call()


def greedy_reference(tree, x):
    """Walk the tree point by point, child by child, in plain Python: the slow, obvious version."""
    words = []
    for point in x:
        node = 0
        for level, centroids in enumerate(tree.centroids):
            first_child = node * tree.k if level else 0
            best, best_d = None, math.inf
            for j in range(tree.k):
                d = ((point - centroids[first_child + j]) ** 2).sum().item()
                if d < best_d:
                    best, best_d = first_child + j, d
            node = best
        words.append(node)
    return torch.tensor(words)


@pytest.mark.parametrize("k, depth", [(2, 1), (2, 3), (3, 2), (4, 2)])
def test_vectorised_assign_equals_the_tree_walk(k, depth):
    x = torch.randn(60, 3, generator=gen(k * 10 + depth), dtype=torch.float64)
    tree = HierarchicalKMeans(k, depth, seed=k).fit(x)
    assert tree.vocab_size == k**depth
    assert [c.shape for c in tree.centroids] == [(k ** (l + 1), 3) for l in range(depth)]
    queries = torch.cat([x, torch.randn(40, 3, generator=gen(99), dtype=torch.float64)])
    words = tree.assign(queries, chunk=7)  # a chunk that does not divide the rows
    assert words.dtype == torch.int64 and words.shape == (100,)
    assert torch.equal(words, greedy_reference(tree, queries))


def test_token_is_the_path_read_in_base_k():
    tree = HierarchicalKMeans(12, 4)
    assert tree.vocab_size == 20_736  # the paper's vocabulary
    assert tree.path(0) == (0, 0, 0, 0) and tree.path(20_735) == (11, 11, 11, 11)
    assert tree.path(1 * 12**3 + 2 * 12**2 + 3 * 12 + 4) == (1, 2, 3, 4)  # first level most significant
    x = torch.randn(80, 2, generator=gen(), dtype=torch.float64)
    small = HierarchicalKMeans(3, 3).fit(x)
    for word in small.assign(x).tolist():
        # the path names the leaf's ancestors: level l holds node  word // k^(depth-1-l)
        path = small.path(word)
        nodes = [sum(j * 3 ** (l - i) for i, j in enumerate(path[: l + 1])) for l in range(3)]
        assert nodes[-1] == word and nodes == [word // 3 ** (2 - l) for l in range(3)]


def test_greedy_descent_finds_the_nearest_leaf_on_well_separated_data():
    # two levels of structure: 3 far-apart groups (scale 100) of 3 sub-clusters (scale 10)
    top = torch.tensor([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    sub = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    centres = (top[:, None] + sub[None]).reshape(9, 2)
    x, _ = blobs(centres, 20, 0.5)
    tree = HierarchicalKMeans(3, 2, seed=0).fit(x)
    nearest_leaf = torch.cdist(x, tree.leaf_centroids()).argmin(dim=1)
    assert torch.equal(tree.assign(x), nearest_leaf)
    assert len(tree.assign(x).unique()) == 9  # one visual word per sub-cluster


def test_greedy_descent_can_miss_the_nearest_leaf():
    # Parents are the means of their children, as k-means makes them:
    #   A = -5 with leaves -10, 0;   B = 11.5 with leaves 3, 20.
    # q = 2.5 is nearer A (7.5) than B (9), so descent picks A and then leaf 0 (2.5 away),
    # while leaf 3 under B is only 0.5 away: greedy looks at 2 + 2 centroids, not all 4.
    tree = HierarchicalKMeans.from_levels([torch.tensor([[-5.0], [11.5]]), torch.tensor([[-10.0], [0.0], [3.0], [20.0]])])
    q = torch.tensor([[2.5]])
    assert tree.assign(q).item() == 1 and tree.path(1) == (0, 1)
    assert torch.cdist(q, tree.leaf_centroids()).argmin().item() == 2


def test_tree_is_complete_with_few_points_and_deterministic():
    x = torch.tensor([[0.0, 0.0], [5.0, 5.0], [9.0, 0.0]])
    tree = HierarchicalKMeans(4, 3, seed=0).fit(x)
    leaves = tree.leaf_centroids()
    assert leaves.shape == (64, 2)
    assert {tuple(r) for r in leaves.tolist()} == {tuple(r) for r in x.tolist()}  # only copies of the points
    assert torch.equal(leaves[tree.assign(x)], x)  # each point finds a leaf on itself

    y = torch.randn(100, 4, generator=gen(3))
    a, b = HierarchicalKMeans(3, 2, seed=7).fit(y), HierarchicalKMeans(3, 2, seed=7).fit(y)
    assert all(torch.equal(u, v) for u, v in zip(a.centroids, b.centroids))


# --------------------------------------------------------------------------- vocabularies and sequences


def test_word_tokenizer_round_trips_and_names_unknown_words():
    tok = WordTokenizer.from_texts(["a red square moves left", "A blue circle moves right quickly"])
    assert tok.words == tuple(sorted(tok.words)) and "a" in tok.words and "A" not in tok.words
    ids = tok.encode("a Blue square moves right")
    assert tok.decode(ids) == "a blue square moves right"
    with pytest.raises(ValueError, match="triangle"):
        tok.encode("a red triangle moves left")
    with pytest.raises(ValueError, match="not in"):
        tok.decode([len(tok)])
    with pytest.raises(ValueError, match="single string"):
        WordTokenizer.from_texts("a red square")


def test_joint_vocabulary_layout_and_the_visual_offset():
    vocab = JointVocabulary(["a", "red", "square"], n_visual=10)
    assert vocab.special_ids == (0, 1, 2, 3, 4) and (vocab.pad_id, vocab.mask_id, vocab.link_id) == (0, 3, 4)
    assert vocab.text_ids == range(5, 8) and vocab.visual_ids == range(8, 18) and vocab.size == 18
    assert vocab.visual_id(0) == 8 and vocab.visual_id(9) == 17  # never the raw word: 0 would be [PAD]
    assert vocab.visual_id(torch.tensor([[1, 2]])).tolist() == [[9, 10]]
    assert vocab.text_id(1) == 6
    for bad in (-1, 10):
        with pytest.raises(ValueError, match=r"\[0, 10\)"):
            vocab.visual_id(bad)
    ids = torch.tensor([0, 1, 4, 5, 7, 8, 17])
    assert vocab.modality(ids).tolist() == [-1, -1, -1, 0, 0, 1, 1]
    assert vocab.is_special(ids).tolist() == [True, True, True, False, False, False, False]
    assert [vocab.token(i) for i in ids.tolist()] == ["[PAD]", "[CLS]", "[>]", "a", "square", "v0", "v9"]
    with pytest.raises(ValueError, match=r"\[0, 18\)"):
        vocab.modality(torch.tensor([18]))
    with pytest.raises(ValueError, match="clash"):
        JointVocabulary(["a", "[MASK]"], 3)


def test_sequences_of_each_kind_and_their_segments():
    vocab = JointVocabulary(["a", "red", "square"], n_visual=10)
    ids, seg = build_sequence([0, 1], [3, 4, 5], vocab)
    assert [vocab.token(i) for i in ids.tolist()] == ["[CLS]", "a", "red", "[>]", "v3", "v4", "v5", "[SEP]"]
    assert seg.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    ids, seg = build_sequence([2], None, vocab)
    assert [vocab.token(i) for i in ids.tolist()] == ["[CLS]", "square", "[SEP]"] and seg.tolist() == [0, 0, 0]
    ids, seg = build_sequence(None, torch.tensor([0]), vocab)
    assert [vocab.token(i) for i in ids.tolist()] == ["[CLS]", "v0", "[SEP]"] and seg.tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="both"):
        build_sequence(None, None, vocab)
    with pytest.raises(ValueError, match="None"):
        build_sequence([], [1], vocab)

    ids, seg, mask = pad_batch([build_sequence([0, 1], [3], vocab), build_sequence([2], None, vocab)])
    assert ids.shape == seg.shape == mask.shape == (2, 6)
    assert mask.tolist() == [[True] * 6, [True] * 3 + [False] * 3]
    assert ids[1, 3:].tolist() == [vocab.pad_id] * 3 and seg[1, 3:].tolist() == [0] * 3


# --------------------------------------------------------------------------- masking


def mixed_batch(vocab, B=400, seed=0):
    """``B`` text+video sequences of 20-40 words and 20-40 visual words, padded."""
    g = gen(seed)
    seqs = []
    for _ in range(B):
        n_t, n_v = torch.randint(20, 41, (2,), generator=g).tolist()
        seqs.append(
            build_sequence(
                torch.randint(vocab.n_text, (n_t,), generator=g), torch.randint(vocab.n_visual, (n_v,), generator=g), vocab
            )
        )
    return pad_batch(seqs)


def test_masking_rates_match_bert_within_five_standard_errors():
    vocab = JointVocabulary([f"w{i}" for i in range(30)], n_visual=50)
    ids, _, mask = mixed_batch(vocab)
    p = 0.15
    masked, labels = mask_tokens(ids, vocab, gen(1), p)
    chosen = labels != -100
    candidates = ~vocab.is_special(ids)
    assert not (chosen & ~candidates).any()  # specials and padding are never chosen
    assert torch.equal(labels[chosen], ids[chosen])

    # number chosen: Binomial(n_b, p) per row, plus one forced pick when none is chosen
    n = candidates.sum(dim=1).double()  # (B,)
    expected = (n * p + (1 - p) ** n).sum().item()
    se = (n * p * (1 - p)).sum().sqrt().item()
    assert abs(chosen.sum().item() - expected) < 5 * se

    # of the chosen: 80 % [MASK]; 10 % a random token of the same modality (which is the
    # original with probability 1/n_modality, then indistinguishable from "unchanged")
    C = chosen.sum().item()
    kind = vocab.modality(ids[chosen])  # (C,)
    same_by_chance = torch.where(kind == 1, 1 / vocab.n_visual, 1 / vocab.n_text).mean().item()
    rates = {
        "mask": ((masked == vocab.mask_id) & chosen).sum().item() / C,
        "changed": ((masked != vocab.mask_id) & (masked != ids) & chosen).sum().item() / C,
        "unchanged": ((masked == ids) & chosen).sum().item() / C,
    }
    for name, target in (("mask", 0.8), ("changed", 0.1 * (1 - same_by_chance)), ("unchanged", 0.1 + 0.1 * same_by_chance)):
        assert abs(rates[name] - target) < 5 * math.sqrt(target * (1 - target) / C), (name, rates[name], target)

    # random replacements stay in their modality; nothing is touched where not chosen
    replaced = chosen & (masked != vocab.mask_id) & (masked != ids)
    assert torch.equal(vocab.modality(masked[replaced]), vocab.modality(ids[replaced]))
    assert torch.equal(masked[~chosen], ids[~chosen])
    again = mask_tokens(ids, vocab, gen(1), p)
    assert torch.equal(again[0], masked) and torch.equal(again[1], labels)


def test_every_sequence_gets_a_masked_token_and_modality_can_be_restricted():
    vocab = JointVocabulary(["a", "b"], n_visual=4)
    ids, _, _ = pad_batch([build_sequence([0, 1], [2, 3], vocab)] * 200 + [build_sequence([0], None, vocab)])
    masked, labels = mask_tokens(ids, vocab, gen(), 0.01)  # p tiny: almost every pick is the forced one
    assert ((labels != -100).sum(dim=1) >= 1).all()
    masked, labels = mask_tokens(ids, vocab, gen(), 0.5, modality=1, mask_rate=1.0, random_rate=0.0)
    chosen = labels != -100
    assert (vocab.modality(ids[chosen]) == 1).all() and (masked[chosen] == vocab.mask_id).all()
    assert not chosen[-1].any()  # the text-only sequence has no visual token to choose
    with pytest.raises(ValueError, match="modality"):
        mask_tokens(ids, vocab, gen(), modality="video")
    with pytest.raises(ValueError, match="p must"):
        mask_tokens(ids, vocab, gen(), 0.0)


# --------------------------------------------------------------------------- the model


def tiny_model(vocab, max_len=16, seed=0):
    torch.manual_seed(seed)
    return VideoBERT(VideoBERTConfig(vocab.size, max_len))


def test_model_shapes_tied_head_and_padding_invariance():
    vocab = JointVocabulary(["a", "red", "square"], n_visual=10)
    model = tiny_model(vocab).eval()
    ids, seg, mask = pad_batch([build_sequence([0, 1, 2], [4, 5], vocab), build_sequence([1], None, vocab)])
    hidden = model(ids, seg, mask)
    assert hidden.shape == (2, 8, 64)
    assert model.mlm_logits(hidden).shape == (2, 8, vocab.size)
    assert model.alignment_logits(hidden).shape == (2,)
    # the MLM decoder is the token embedding itself: no second (vocab, D) matrix
    assert sum(p.shape == (vocab.size, 64) for p in model.parameters()) == 1
    # padding changes nothing for the real tokens: the short sequence alone, unpadded
    alone = model(ids[1:, :3], seg[1:, :3], mask[1:, :3])
    torch.testing.assert_close(hidden[1, :3], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda i, s, m: (i + 100, s, m), r"ids must lie in \[0, 18\)"),
        (lambda i, s, m: (i.float(), s, m), "integer tensor"),
        (lambda i, s, m: (i.repeat(1, 3), s.repeat(1, 3), m.repeat(1, 3)), "max_len"),
        (lambda i, s, m: (i, s + 2, m), "segments"),
        (lambda i, s, m: (i, s, m.long()), "mask must be bool"),
        (lambda i, s, m: (i, s, m[:, :-1]), "mask must be bool"),
        (lambda i, s, m: (i, s, torch.zeros_like(m)), "at least one real token"),
    ],
)
def test_bad_model_inputs_raise(change, words):
    vocab = JointVocabulary(["a", "red", "square"], n_visual=10)
    ids, seg, mask = pad_batch([build_sequence([0, 1, 2], [4, 5], vocab)])  # L = 8
    with pytest.raises(ValueError, match=words):
        tiny_model(vocab, max_len=16)(*change(ids, seg, mask))


# --------------------------------------------------------------------------- pre-training and evaluation


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(steps=0), "steps"),
        (dict(lr=0), "lr"),
        (dict(mask_prob=0), "mask_prob"),
        (dict(negative_fraction=1.0), "negative_fraction"),
        (dict(mix=(1, 1)), "mix"),
        (dict(mix=(1, 1, 0), batch_size=4), "no text\\+video"),
    ],
)
def test_bad_pretrain_configs_raise(kwargs, words):
    with pytest.raises(ValueError, match=words):
        PretrainConfig(**kwargs)


def test_negatives_always_have_a_different_caption():
    groups = torch.tensor([0, 0, 1, 2, 2, 2, 3])
    index = torch.arange(7).repeat(500)  # (3500,)
    other = _other_caption(index, groups, gen())
    assert (groups[other] != groups[index]).all()
    # uniform over the others: pair 0 (caption 0) has 5 others, each drawn ~1/5 of the time
    counts = torch.bincount(other[index == 0], minlength=7)[2:].double()
    assert ((counts / 500 - 0.2).abs() < 5 * math.sqrt(0.2 * 0.8 / 500)).all()
    with pytest.raises(ValueError, match="same caption"):
        _other_caption(torch.tensor([0]), torch.tensor([0, 0]), gen())


def test_pretraining_is_deterministic_and_checks_its_inputs():
    vocab = JointVocabulary(["a", "b", "c"], n_visual=6)
    texts = [[0, 1], [1, 2], [2]]
    visual = torch.tensor([[0, 1], [2, 3], [4, 5]])
    cfg = PretrainConfig(steps=3, batch_size=8)
    runs = [pretrain(tiny_model(vocab), texts, visual, vocab, cfg, progress=False) for _ in range(2)]
    assert runs[0] == runs[1] and set(runs[0]) == {"loss", "mlm", "alignment"} and len(runs[0]["loss"]) == 3
    with pytest.raises(ValueError, match="pairs must match"):
        pretrain(tiny_model(vocab), texts[:2], visual, vocab, cfg, progress=False)
    with pytest.raises(ValueError, match="visual ids"):
        pretrain(tiny_model(vocab), texts, visual + 6, vocab, cfg, progress=False)
    with pytest.raises(ValueError, match="max_len"):
        pretrain(tiny_model(vocab, max_len=6), texts, visual, vocab, cfg, progress=False)
    with pytest.raises(ValueError, match="same caption"):
        pretrain(tiny_model(vocab), [[0]] * 3, visual, vocab, cfg, progress=False)


def test_recall_at_k_on_hand_made_scores():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.4]])
    relevant = torch.tensor([[True, False, False, False], [False, False, True, False], [True, True, False, False]])
    # query 0: relevant ranked 1st; query 1: 2nd; query 2: best relevant (item 1) ranked 3rd
    assert recall_at_k(scores, relevant, ks=(1, 2, 3, 10)) == {1: 1 / 3, 2: 2 / 3, 3: 1.0, 10: 1.0}
    # ties go to the lower index
    assert recall_at_k(torch.zeros(1, 3), torch.tensor([[False, True, False]]), ks=(1, 2)) == {1: 0.0, 2: 1.0}
    with pytest.raises(ValueError, match="at least one relevant"):
        recall_at_k(scores, torch.zeros(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(Q, M\)"):
        recall_at_k(scores[:2], relevant)


def test_chance_recall_is_exact():
    relevant = torch.tensor([[True, False, False, False, False], [True, True, False, False, True]])
    assert chance_recall(relevant[:1], 2) == pytest.approx(2 / 5)  # k/M for one relevant item
    for k in (1, 2, 3, 5, 7):
        # average recall@k over every one of the 5! rankings
        hits = [
            recall_at_k(torch.tensor(perm, dtype=torch.float).expand(2, 5), relevant, ks=(k,))[k]
            for perm in itertools.permutations(range(5))
        ]
        assert chance_recall(relevant, k) == pytest.approx(sum(hits) / len(hits))


# --------------------------------------------------------------------------- end to end


def synthetic_pairs(tokenizer, captions, M, seed, words_per_video=4):
    """``M`` (caption, video) pairs: the video's visual words are ``2·caption_id + b``, ``b``
    an independent coin per word, so each caption has its own two words and no word is shared."""
    g = gen(seed)
    caption_id = torch.randint(len(captions), (M,), generator=g)  # (M,)
    visual = 2 * caption_id[:, None] + torch.randint(2, (M, words_per_video), generator=g)  # (M, S)
    return [tokenizer.encode(captions[c]) for c in caption_id.tolist()], visual, caption_id


def test_pretraining_learns_to_align_captions_with_visual_words():
    data = MovingShapesConfig(speeds=(1,))  # 2 directions × 3 shapes × 3 colours = 18 captions
    labels = itertools.product(*(range(len(v)) for v in (data.directions, data.shapes, data.colours, data.speeds)))
    captions = [caption(*l, data) for l in labels]
    tokenizer = WordTokenizer.from_texts(captions)
    vocab = JointVocabulary(tokenizer.words, n_visual=2 * len(captions))
    train_text, train_visual, _ = synthetic_pairs(tokenizer, captions, 512, seed=0)
    test_text, test_visual, test_caption = synthetic_pairs(tokenizer, captions, 144, seed=1)

    model = tiny_model(vocab)
    history = pretrain(model, train_text, train_visual, vocab, PretrainConfig(steps=800, lr=2e-3), progress=False)
    assert sum(history["alignment"][-50:]) / 50 < sum(history["alignment"][:50]) / 50 - 0.3

    queries = [tokenizer.encode(c) for c in captions]
    scores = retrieval_scores(model, queries, test_visual, vocab)  # (18, 144)
    relevant = torch.arange(len(captions))[:, None] == test_caption[None, :]  # (18, 144)
    recall = recall_at_k(scores, relevant, ks=(1, 5))
    chance = chance_recall(relevant, 1)  # ≈ 1/18: each caption has ~8 of the 144 videos
    assert recall[1] > 8 * chance, (recall, chance)
    assert alignment_accuracy(model, test_text, test_visual, vocab, seed=0) > 0.9
    # text from video: every word is recoverable; video from text: the coin b is not, so 1/2 is the ceiling
    assert masked_token_accuracy(model, test_text, test_visual, vocab, "text", seed=0) > 0.8
    assert 0.35 < masked_token_accuracy(model, test_text, test_visual, vocab, "video", seed=0) <= 0.65


def test_attention_weights_are_the_last_blocks_and_skip_padding():
    torch.manual_seed(0)
    model = VideoBERT(VideoBERTConfig(vocab_size=20, max_len=8, depth=2)).eval()
    ids = torch.tensor([[1, 5, 6, 4, 12, 13, 2, 0]])  # one padded position at the end
    mask = ids != 0
    segments = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1]])
    w = model.attention_weights(ids, segments, mask)  # (1, h, L, L)
    assert w.shape == (1, model.config.heads, 8, 8)
    torch.testing.assert_close(w.sum(-1)[..., :7], torch.ones(1, model.config.heads, 7))
    assert torch.all(w[..., 7] == 0)  # nobody attends to the padding
    # the weights are those of the block that produces the output: recompute the last block by hand
    with torch.no_grad():
        seen = []
        blk = model.encoder.blocks[1]
        hook = blk.register_forward_pre_hook(lambda m, args, kwargs: seen.append((args[0], kwargs["mask"])),
                                             with_kwargs=True)
        model(ids, segments, mask)
        hook.remove()
        x, key_mask = seen[0]  # what the last block was given
        out = x + blk.attn(blk.ln_1(x), mask=key_mask)
        out = out + blk.mlp(blk.ln_2(out))
        torch.testing.assert_close(model.norm(out), model(ids, segments, mask))
        _, again = blk.attn(blk.ln_1(x), mask=key_mask, return_weights=True)
    torch.testing.assert_close(w, again)


def test_segment_features_cut_consecutive_segments():
    class MeanFrame(torch.nn.Module):
        def features(self, clip):  # (b, f, C, H, W) -> (b, 1): the clip's mean value
            return clip.mean(dim=(1, 2, 3, 4))[:, None]

    from vidlearn.videobert import segment_features

    video = torch.arange(2 * 9, dtype=torch.float32).reshape(2, 9, 1, 1, 1)  # frame value = its index
    feats = segment_features(MeanFrame(), video, 4, batch_size=3)  # the 9th frame is dropped
    assert feats.shape == (2, 2, 1)
    assert feats[0, :, 0].tolist() == [1.5, 5.5] and feats[1, :, 0].tolist() == [10.5, 14.5]
    with pytest.raises(ValueError, match="no whole segment"):
        segment_features(MeanFrame(), video, 10)


def test_unchanged_share_is_keep_rate_plus_random_draws_of_the_same_token():
    from vidlearn.videobert import expected_unchanged_share

    vocab = JointVocabulary([f"w{i}" for i in range(10)], n_visual=64)
    # 5 words and 4 visual words per sequence, as in chapter 6
    g = torch.Generator().manual_seed(0)
    seqs = [build_sequence(torch.randint(10, (5,), generator=g), torch.randint(64, (4,), generator=g), vocab)
            for _ in range(256)]
    ids, _, _ = pad_batch(seqs)
    big = ids.repeat(100, 1)
    masked, labels = mask_tokens(big, vocab, torch.Generator().manual_seed(1))
    chosen = labels != -100
    expected = expected_unchanged_share(big, labels, vocab)
    text_share = (vocab.modality(big[chosen]) == 0).double().mean().item()
    assert expected == pytest.approx(0.1 + 0.1 * (text_share / 10 + (1 - text_share) / 64), abs=1e-12)
    assert expected == pytest.approx(0.106, abs=0.001)
    measured = (masked[chosen] == big[chosen]).double().mean().item()
    se = math.sqrt(expected * (1 - expected) / int(chosen.sum()))
    assert abs(measured - expected) < 4 * se
    # other rates: nothing random means exactly the keep rate
    assert expected_unchanged_share(big, labels, vocab, mask_rate=0.9, random_rate=0.0) == pytest.approx(0.1)
    # text only, 10 words: 0.1 + 0.1/10
    text_labels = torch.where(vocab.modality(big) == 0, labels, -100)
    if (text_labels != -100).any():
        assert expected_unchanged_share(big, text_labels, vocab) == pytest.approx(0.11)
    with pytest.raises(ValueError, match="no position"):
        expected_unchanged_share(big, torch.full_like(labels, -100), vocab)
    with pytest.raises(ValueError, match="special"):
        expected_unchanged_share(big, big, vocab)  # every position, [CLS] included, "chosen"
