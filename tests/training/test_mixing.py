"""Mixup, CutMix and alternating flip: what each does to a batch, and that training runs with them."""
from __future__ import annotations

import torch

from fer_core.training.config import TrainConfig, config_from_args, config_to_args, get_args_parser
from fer_core.training.mixing import alternating_flips, mix_batch


def batch(b=8):
    return torch.arange(b * 48 * 48, dtype=torch.float32).reshape(b, 1, 48, 48) / (b * 48 * 48)


def test_no_mixing_returns_the_batch_itself():
    x = batch()
    mixed, partner, lam = mix_batch(x, "none", 1.0, torch.Generator().manual_seed(0))
    assert mixed is x and partner is None and lam == 1.0


def test_mixup_blends_each_image_with_its_partner_in_proportion_lam():
    x = batch()
    mixed, partner, lam = mix_batch(x, "mixup", 1.0, torch.Generator().manual_seed(0))
    assert 0 < lam < 1 and sorted(partner.tolist()) == list(range(8))
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[partner])


def test_cutmix_pastes_one_rectangle_whose_area_is_the_partners_share():
    x = batch()  # every pixel of every image differs from every other
    for seed in range(5):
        mixed, partner, lam = mix_batch(x, "cutmix", 1.0, torch.Generator().manual_seed(seed))
        i = next(k for k in range(8) if partner[k] != k)
        patch = mixed[i, 0] != x[i, 0]
        assert abs(patch.float().mean().item() - (1 - lam)) < 1e-6  # lam is what the clipped patch left
        assert bool((mixed[i, 0][patch] == x[partner[i], 0][patch]).all())
        rows, cols = patch.any(1).nonzero().flatten(), patch.any(0).nonzero().flatten()
        if len(rows):  # one rectangle: its bounding box is all patch
            assert bool(patch[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all())


def test_alternating_flip_mirrors_each_image_every_other_epoch():
    first, second, third = (alternating_flips(1000, epoch, seed=3) for epoch in (1, 2, 3))
    assert bool((first ^ second).all()) and bool((first == third).all())
    assert 400 < int(first.sum()) < 600
    assert not bool((alternating_flips(1000, 1, seed=4) == first).all())  # another seed, another half


def test_the_new_options_round_trip_through_the_command_line():
    cfg = TrainConfig(mix="cutmix", mix_alpha=0.5, alternating_flip=True)
    again = config_from_args(get_args_parser().parse_args(config_to_args(cfg)))
    assert (again.mix, again.mix_alpha, again.alternating_flip) == ("cutmix", 0.5, True)


def test_a_tiny_run_trains_with_cutmix_and_alternating_flip(make_kaggle_zip, tmp_path):
    import json

    from fer_core.training.train import main
    run = main(TrainConfig(data=str(make_kaggle_zip()), out=str(tmp_path), epochs=2, batch_size=16, tta_views=2,
                           mix="cutmix", alternating_flip=True))
    config = json.loads((run / "config.json").read_text())
    assert config["mix"] == "cutmix" and config["alternating_flip"] is True
    assert (run / "eval.json").is_file()
