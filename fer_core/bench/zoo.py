"""Milliseconds per face of each model a user picks from: what the README's model zoo and the Predict and Live
pickers show beside the accuracy.

    python -m fer_core bench zoo [--write]

One 48x48 face, on one thread (as Live runs), with the engine `auto` picks for that batch: TTA off (batch 1)
and with 10 views (batch 10, as Predict). Medians of 50 calls after a warm-up; `--write` stores them in each
card with the machine they were measured on.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import torch

from ..cards.model_cards import load_cards, update_card
from ..cards.results_table import ZOO_ORDER
from ..evaluation.metrics import predict_images
from ..evaluation.tta import DEFAULT_VIEWS
from ..inference.engines import engine_model, engine_name
from ..errors import FERError
from ..paths import models_dir as default_models_dir
from ..paths import path_inside
from .timing import machine_line, median_ms


def face_speed(model_file: str | Path, repeats: int = 50) -> dict:
    face = np.random.default_rng(0).integers(0, 256, (1, 48, 48), dtype=np.uint8)
    speed = {}
    for key, views in (("ms_per_face", 1), ("ms_per_face_tta", DEFAULT_VIEWS)):
        model = engine_model(model_file, None, batch=views, threads=1)
        speed[key] = round(median_ms(lambda m=model, v=views: predict_images(m, face, v, 256, "cpu"), repeats), 2)
        speed[f"engine{'_tta' if views > 1 else ''}"] = engine_name(model)
    return speed


def run(args) -> int:
    torch.set_num_threads(1)
    skipped = 0
    machine = machine_line()
    print(f"one face, one thread, engine chosen by auto; medians of 50 calls\nmachine: {machine}")
    for card in load_cards(args.models_dir or default_models_dir()):
        if card["kind"] not in ZOO_ORDER or card.get("damage"):
            continue
        card_path = Path(card["card_path"])
        try:  # a card names its checkpoint: inside its own folder, and one bad card stops no other
            model_file = card_path if card["kind"] == "ensemble" else path_inside(
                card_path.parent, str(card.get("checkpoint") or ""), "checkpoint")
            speed = face_speed(model_file)
        except FERError as exc:
            print(f"{card['name']:24} skipped: {exc}")
            skipped += 1
            continue
        print(f"{card['name']:24} {speed['ms_per_face']:6.2f} ms ({speed['engine']}), "
              f"{speed['ms_per_face_tta']:6.2f} ms with {DEFAULT_VIEWS} views ({speed['engine_tta']})")
        if args.write:
            update_card(card["card_path"], speed={**speed, "machine": machine, "measured": date.today().isoformat()})
    return 1 if skipped else 0
