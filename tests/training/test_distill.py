"""Distillation: a student trained with --teacher learns the teacher's probabilities, not only the labels."""
import json

import pytest
import torch

from fer_core.labels import EMOTIONS
from fer_core.models.checkpoints import save_checkpoint
from fer_core.models.registry import create_model
from fer_core.training.augment import AugmentConfig
from fer_core.training.config import TrainConfig
from fer_core.training.distill import distillation_loss, label_views
from fer_core.training.train import main as train

TINY = dict(arch="fer_vgg_small", batch_size=16, tta_views=2, device="cpu", rotate=0, zoom=0, shift=0)


@pytest.fixture
def happy_teacher(tmp_path):
    """A teacher that calls every face happy (its last layer's bias), whatever the label says."""
    torch.manual_seed(0)
    model = create_model("fer_vgg_small")
    last = model.classifier[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(-5.0)
        last.bias[EMOTIONS.index("happy")] = 5.0
    path = tmp_path / "teacher.pt"
    save_checkpoint(path, {"arch": "fer_vgg_small", "model_config": {}, "labels": list(EMOTIONS),
                           "state_dict": model.state_dict(), "epoch": 0, "val_accuracy": 0.0, "train_config": {}})
    return path


def test_the_loss_mixes_soft_and_hard_targets():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    soft = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    expected_soft = -(logits.log_softmax(1)[:, 0]).mean()
    hard = torch.tensor(0.3)
    assert torch.isclose(distillation_loss(logits, soft, hard, 1.0), expected_soft)
    assert torch.isclose(distillation_loss(logits, soft, hard, 0.0), hard)
    assert torch.isclose(distillation_loss(logits, soft, hard, 0.5), 0.5 * expected_soft + 0.15)


@pytest.mark.parametrize("teacher_views", [0, 2], ids=["clean", "consistent"])
def test_a_student_learns_its_teachers_answers(tmp_path, make_kaggle_zip, happy_teacher, teacher_views):
    data = str(make_kaggle_zip(per_class=(6, 3, 3)))
    run = train(TrainConfig(data=data, out=str(tmp_path), name="student", epochs=4, teacher=str(happy_teacher),
                            teacher_views=teacher_views, distill_weight=1.0, lr=0.05, **TINY))
    evaluation = json.loads((run / "eval.json").read_text())
    predicted_happy = [row[EMOTIONS.index("happy")] for row in evaluation["test"]["plain"]["confusion_matrix"]]
    assert sum(predicted_happy) >= 0.8 * evaluation["test"]["plain"]["n"]  # the labels alone are 1/7 happy


def test_a_missing_teacher_is_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match="teacher model not found"):
        TrainConfig(teacher=str(tmp_path / "nope.pt")).validate()


@pytest.mark.parametrize("mirror", [False, True], ids=["views", "mirrored-views"])
def test_a_resumed_consistent_student_relabels_the_same_views(tmp_path, make_kaggle_zip, happy_teacher, crash_in_epoch,
                                                              mirror):
    data = str(make_kaggle_zip(per_class=(6, 3, 3)))
    cfg = dict(data=data, out=str(tmp_path), epochs=2, teacher=str(happy_teacher), teacher_views=3, teacher_mirror=mirror,
               **{**TINY, "rotate": 10, "zoom": 0.1, "shift": 0.1})  # views that differ from the clean faces
    straight = train(TrainConfig(name="straight", **cfg))
    crash_in_epoch(2)
    with pytest.raises(MemoryError):
        train(TrainConfig(name="crashed", **cfg))
    crash_in_epoch(None)
    crashed = train(None, resume=tmp_path / "crashed")
    final = lambda run: json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["val_loss"]  # noqa: E731
    assert final(crashed) == pytest.approx(final(straight), rel=1e-5)


class _Brightness(torch.nn.Module):
    """A stand-in teacher whose answer depends on the pixels it is shown: logits = mean brightness x (0..6)."""

    def forward(self, x):
        return x.mean(dim=(1, 2, 3)).unsqueeze(1) * torch.arange(7.0)


def test_consistent_teaching_pairs_each_view_with_the_teachers_answer_for_that_view():
    images = torch.randint(0, 256, (10, 48, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)).numpy()
    targets = label_views(_Brightness(), images, 3, AugmentConfig(rotate=20, zoom=0.2, shift=0.2), 0, torch.device("cpu"))
    assert targets.views.shape == (3, 10, 1, 48, 48) and targets.probs.shape == (3, 10, 7)
    assert not torch.equal(targets.views[0], targets.views[1])  # three different augmentations of each face
    x, probs = targets.draw(torch.arange(10), torch.Generator().manual_seed(1))
    assert torch.allclose(probs, _Brightness()(x).softmax(-1), atol=1e-3)  # the answer for the very view drawn


class _LeftMinusRight(torch.nn.Module):
    """A stand-in teacher that tells a face from its mirror: logits = (left half - right half) x (0..6)."""

    def forward(self, x):
        half = x.shape[-1] // 2
        return (x[..., :half].mean(dim=(1, 2, 3)) - x[..., half:].mean(dim=(1, 2, 3))).unsqueeze(1) * torch.arange(7.0)


def test_a_mirrored_teacher_answers_for_the_view_and_its_mirror_and_the_student_sees_both():
    images = torch.randint(0, 256, (32, 48, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)).numpy()
    teacher = _LeftMinusRight()
    targets = label_views(teacher, images, 2, AugmentConfig(rotate=20, zoom=0.2, shift=0.2), 0, torch.device("cpu"),
                          mirror=True)
    x, probs = targets.draw(torch.arange(32), torch.Generator().manual_seed(1))
    both = (teacher(x).softmax(-1) + teacher(x.flip(-1)).softmax(-1)) / 2
    assert torch.allclose(probs, both, atol=1e-3)
    assert not torch.allclose(probs, teacher(x).softmax(-1), atol=1e-2)  # not the plain answer for the view
    stored = [any(torch.equal(x[i], targets.views[v, i].float()) for v in range(2)) for i in range(32)]
    mirrored = [any(torch.equal(x[i], targets.views[v, i].float().flip(-1)) for v in range(2)) for i in range(32)]
    assert 0 < sum(stored) < 32 and all(s or m for s, m in zip(stored, mirrored))  # each as stored or left-right


def test_a_stop_while_the_teacher_labels_cancels_the_run_and_resume_finishes_it(tmp_path, make_kaggle_zip,
                                                                             happy_teacher, monkeypatch):
    import signal

    import fer_core.training.distill
    cfg = dict(data=str(make_kaggle_zip(per_class=(6, 3, 3))), out=str(tmp_path), epochs=1, teacher=str(happy_teacher),
               teacher_views=2, **TINY)
    straight = train(TrainConfig(name="straight", **cfg))
    label = fer_core.training.distill.label_views

    def cancel_then_label(*args, **kwargs):  # what the Cancel button sends, while the labelling runs
        signal.raise_signal(signal.SIGTERM)
        return label(*args, **kwargs)
    monkeypatch.setattr(fer_core.training.distill, "label_views", cancel_then_label)
    run = train(TrainConfig(name="stopped", **cfg))
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "cancelled" and not (run / "metrics.jsonl").exists()
    monkeypatch.setattr(fer_core.training.distill, "label_views", label)
    train(None, resume=run)
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    final = lambda run: json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["val_loss"]  # noqa: E731
    assert final(run) == pytest.approx(final(straight), rel=1e-5)


@pytest.mark.parametrize("with_teacher, options, message", [
    (False, dict(teacher_views=4), "teacher views need --teacher"),
    (True, dict(teacher_views=4, crop=44), "cannot be combined with --crop"),
    (True, dict(teacher_views=-1), "teacher views must be"),
    (True, dict(teacher_mirror=True), "--teacher-mirror needs --teacher-views"),
    (True, dict(teacher_views=2, teacher_mirror=True, flip=False), "it needs --flip on"),
])
def test_bad_teacher_views_are_refused_before_training(happy_teacher, with_teacher, options, message):
    teacher = str(happy_teacher) if with_teacher else None
    with pytest.raises(ValueError, match=message):
        TrainConfig(teacher=teacher, **options).validate()
