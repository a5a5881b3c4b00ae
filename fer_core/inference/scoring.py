"""Scoring a model on labelled faces: a FER2013 split, or a folder of faces from elsewhere (face_folder.py).
What `python -m fer_core evaluate` reports, as a dict (its `--json`)."""
from __future__ import annotations

import os

from ..data.fer2013 import load_dataset
from ..data.ferplus import find_votes_file, with_crowd_labels
from ..data.leakage import clean_report, leaked_test_mask
from ..errors import FERError
from ..evaluation.metrics import metrics_report, predict_images
from .engines import engine_model, engine_name
from .face_folder import load_face_folder
from .faces import FaceDetector

EVALUATION_BATCH = 256


def score_model(checkpoint: str | os.PathLike, device, *, data: str | None = None, split: str = "test",
                faces: str | os.PathLike | None = None, whole_image: bool = False, views: int = 1,
                amp: bool = True, engine: str | None = None, labels: str = "fer2013",
                ferplus: str | os.PathLike | None = None) -> dict:
    """Accuracy, F1, per-class figures and the confusion matrix of `checkpoint` (a .pt, a saved ensemble or an
    .onnx) on FER2013's `split` of `data`, or on the labelled face folder `faces` (each image's largest face,
    or the `whole_image`). On PrivateTest, `clean` repeats the figures without the images copied in Training.
    `engine`: what runs the network (inference/engines.py; None: $FER_ENGINE, else auto, the fastest that
    agrees with PyTorch)."""
    if whole_image and not faces:
        raise FERError("--whole-image goes with --faces DIR (FER2013's images are face crops already)")
    if labels != "fer2013" and faces:
        raise FERError("--labels ferplus relabels FER2013's images: it does not go with --faces")
    if labels != "fer2013":
        find_votes_file(ferplus)  # before the model loads
    model = engine_model(checkpoint, engine, EVALUATION_BATCH, device)
    label_source = labels
    if faces:
        folder = load_face_folder(faces, None if whole_image else FaceDetector())
        images, labels = folder.crops, folder.labels
    else:
        dataset = load_dataset(data)
        if labels != "fer2013":
            dataset = with_crowd_labels(dataset, ferplus)
        images, labels = dataset[split].images, dataset[split].labels
    predicted = predict_images(model, images, views, EVALUATION_BATCH, device, amp=amp).argmax(1)
    report = metrics_report(labels, predicted)
    report.update(tta=views > 1, tta_views=views)
    if faces:
        report.update(faces=str(faces), face_detection=not whole_image, skipped=folder.skipped,
                      ignored_folders=folder.ignored_folders)
    elif split == "test":  # the same figure without the test images that have a copy in Training
        report["clean"] = clean_report(labels, predicted, leaked_test_mask(dataset))
    ran = engine_name(model, device, amp)  # "PyTorch bf16", "ONNX Runtime int8"...
    report.update(checkpoint=str(checkpoint), split=None if faces else split, engine=ran, label_source=label_source,
                  precision=ran.replace("PyTorch ", "").replace("ONNX Runtime", "onnxruntime"))
    return report
