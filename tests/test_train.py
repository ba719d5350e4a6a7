"""The training loop: reproducible, validated, and it separates order-aware from order-blind models."""

import math

import pytest
import torch
from torch import nn

from vidlearn.data import MovingShapesConfig
from vidlearn.flops import vivit_macs
from vidlearn.train import (
    TrainConfig,
    accuracy,
    held_out,
    results_table,
    shuffled_accuracy,
    train_classifier,
    train_vivit,
)
from vidlearn.vivit import ViViTConfig

SHORT = TrainConfig(steps=120, eval_clips=256)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(steps=0), "steps"),
        (dict(batch_size=True), "batch_size"),
        (dict(warmup=-1), "warmup"),
        (dict(lr=0), "lr"),
        (dict(target="size"), "target"),
        (dict(data="moving shapes"), "MovingShapesConfig"),
    ],
)
def test_bad_train_configs_raise(kwargs, words):
    with pytest.raises(ValueError, match=words):
        TrainConfig(**kwargs)


def test_num_classes_follow_the_data_config():
    data = MovingShapesConfig(colours=("red", "green"), speeds=(1, 2, 3))
    assert TrainConfig(data=data).num_classes == 2  # left, right
    assert TrainConfig(data=data, target="colour").num_classes == 2
    assert TrainConfig(data=data, target="speed").num_classes == 3
    assert TrainConfig(data=data, target="shape").num_classes == len(data.shapes)


def test_model_with_wrong_number_of_classes_is_rejected_before_training():
    model = nn.Sequential(nn.Flatten(), nn.LazyLinear(3))
    with pytest.raises(ValueError, match="2 classes"):
        train_classifier(model, SHORT, progress=False)


def test_learning_rate_warms_up_then_decays_to_zero():
    from vidlearn.train import _lr_factor

    c = TrainConfig(steps=100, warmup=10)
    factors = [_lr_factor(s, c) for s in range(101)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))  # non-increasing after warm-up
    assert factors[100] == pytest.approx(0.0, abs=1e-12)


def test_training_is_reproducible():
    c = TrainConfig(steps=15, eval_clips=64)
    a = train_vivit(ViViTConfig.tiny("factorised_dot_product"), c, progress=False)
    b = train_vivit(ViViTConfig.tiny("factorised_dot_product"), c, progress=False)
    assert a.losses == b.losses and a.accuracy == b.accuracy
    d = train_vivit(ViViTConfig.tiny("factorised_dot_product"), TrainConfig(steps=15, eval_clips=64, seed=1),
                    progress=False)
    assert d.losses != a.losses


def test_held_out_clips_are_not_training_clips():
    from vidlearn.data import generate
    from vidlearn.train import _STRIDE

    c = TrainConfig(steps=5, batch_size=4, eval_clips=4)
    test = held_out(c).video
    for step in range(c.steps):
        train = generate(c.data, c.batch_size, seed=c.seed * _STRIDE + step).video
        assert not torch.equal(train, test)


def test_space_time_model_learns_direction_and_space_only_model_cannot():
    joint = train_vivit(ViViTConfig.tiny("joint"), SHORT, progress=False)
    space = train_vivit(
        ViViTConfig.tiny("factorised_encoder", tubelet=(1, 8, 8), temporal_depth=0, pooling="mean"),
        SHORT, name="space only", progress=False,
    )
    assert joint.accuracy > 0.9
    # one frame carries no information about the direction: at chance, within 4 standard errors
    assert abs(space.accuracy - 0.5) < 4 * math.sqrt(0.25 / SHORT.eval_clips)
    assert space.final_loss > 0.65 > 0.1 > joint.final_loss
    # shuffled, a clip's label is independent of what any model sees (time reversal maps one class
    # onto the other with the same frames), so even the trained joint model is at chance
    assert abs(shuffled_accuracy(joint.model, SHORT) - 0.5) < 4 * math.sqrt(0.25 / SHORT.eval_clips)
    assert joint.macs == vivit_macs(ViViTConfig.tiny("joint"))


def test_accuracy_counts_argmax_hits():
    class Fixed(nn.Module):
        def forward(self, video):
            return video[:, 0, 0, 0, :2]  # (B, 2): the first two pixels decide

    video = torch.zeros(4, 1, 1, 1, 2)
    video[:2, ..., 1] = 1.0  # clips 0, 1 -> class 1; clips 2, 3 -> class 0 (ties go to the first)
    assert accuracy(Fixed(), video, torch.tensor([1, 0, 0, 0]), batch_size=3) == 0.75
    with pytest.raises(ValueError, match="labels"):
        accuracy(Fixed(), video, torch.tensor([1, 0]))


def test_results_table_lists_every_run():
    from vidlearn.train import TrainResult

    runs = [TrainResult("A", 0.5, [0.7, 0.69], 1.0, 10, 2, macs=2_000_000), TrainResult("B", 1.0, [0.1], 2.5, 20, 1)]
    table = results_table(runs, chance=0.5)
    assert "| A | 0.500 | 10 | 2.00 M |" in table and "| B | 1.000 | 20 |" in table
    assert "Chance level: 0.500" in table
