"""EmotionRecognizer: a checkpoint loaded once, then emotions of every face in photos, frames and videos.

    rec = EmotionRecognizer.load()                  # models/default.pt; load(path) for another
    for face in rec.predict("photo.jpg", tta=True):
        print(face.box, face.label, face.confidence)
    faces = rec.predict("photo.jpg", explain=True)  # + face.saliency[face.label]: where the network looked

All faces of an image go through the network in one batch, with all TTA views of each.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch

from ..errors import CheckpointError, FERError
from ..evaluation.calibration import scaled
from ..evaluation.metrics import predict_images
from ..evaluation.tta import DEFAULT_VIEWS, MAX_VIEWS
from ..models.card import ModelCard
from ..models.precision import memory_format
from ..labels import EMOTIONS
from ..paths import default_checkpoint
from .faces import Face, FaceDetector, whole_image_face
from .framing import crop_face, crop_region
from .images import ImageSource, read_image


@dataclass
class FaceResult:
    box: tuple[int, int, int, int]  # x, y, w, h in pixels of the (EXIF-rotated) image
    label: str
    confidence: float
    probabilities: dict[str, float]  # every emotion, in FER2013 order, summing to 1
    face_score: float | None = None  # the detector's confidence where it gives one (YuNet)
    angle: float = 0.0  # degrees the face was turned (counter-clockwise) to level its eyes before cropping
    whole_image: bool = False  # no face was found: the whole photo was read as one face, as the user asked
    # with explain: {emotion: Grad-CAM map in [0, 1]} over the square region the network saw (crop_face's, the
    # box in FER2013's frame), at that region's size in image pixels, as the network saw it: levelled by `angle`
    saliency: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        return {"box": list(self.box), "label": self.label, "confidence": round(self.confidence, 6),
                "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
                "face_score": None if self.face_score is None else round(self.face_score, 4),
                "angle": round(self.angle, 1), **({"whole_image": True} if self.whole_image else {})}


@dataclass
class FrameResult:
    index: int       # frame number in the video, from 0
    time_s: float    # its timestamp in seconds
    faces: list[FaceResult]
    frame: np.ndarray | None = field(default=None, repr=False)  # the RGB frame, for drawing

    def to_dict(self) -> dict:
        return {"frame": self.index, "time": round(self.time_s, 3), "faces": [f.to_dict() for f in self.faces]}


class EmotionRecognizer:
    def __init__(self, model: torch.nn.Module, detector: FaceDetector | None = None,
                 device: str | torch.device = "cpu", source: str = ""):
        self.model = model.eval().to(memory_format=memory_format(torch.device(device)))
        self.detector = detector or FaceDetector()
        self.device = torch.device(device)
        self.source = source  # the checkpoint path, for display
        self.engine = ""  # what runs the network, for display ("ONNX Runtime int8"), set by load()
        self.temperatures: dict[str, float] = {}  # {"plain": T, "tta": T} from the model's card; {}: uncalibrated
        self.calibration = "uncalibrated"  # what the confidences are, in words, for display
        self._explained: torch.nn.Module | None = None  # the PyTorch network saliency maps are taken from

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
             yunet_model: str | os.PathLike | None = None, engine: str | None = None, batch: int = DEFAULT_VIEWS,
             threads: int | None = None, onnxruntime_threads: int | None = None,
             calibrated: bool = True) -> "EmotionRecognizer":
        """The shipped default model (models/default.pt), the checkpoint at `path`, a saved ensemble (.json) or
        an ONNX export.

        `engine`: torch, onnxruntime, int8 or auto (the default, or $FER_ENGINE): the fastest engine on this
        machine for batches of `batch` faces (10: one face with 10-view TTA; Live uses 1), measured once
        (inference/engines.py). `threads`: ONNX Runtime's own threads (Live runs on 1, leaving the rest to the
        browser). `onnxruntime_threads` is the older spelling of engine="onnxruntime", threads=N.
        `calibrated`: confidences temperature-scaled with the card's temperature, fitted on PublicTest (a model
        without one, or calibrated=False, gives the raw softmax; `calibration` says which)."""
        from .engines import engine_model, engine_name
        if path is None:
            path = default_checkpoint()
            if not Path(path).is_file():
                raise CheckpointError(
                    f"the default model is missing ({path}). Train one and ship it: `python -m fer_core train` "
                    "then `python -m fer_core ship runs/<run> --name default`; or pass a checkpoint: load('runs/<run>/best.pt')")
        if onnxruntime_threads:
            engine, threads = "onnxruntime", onnxruntime_threads
        model = engine_model(path, engine, batch, device, threads)
        recognizer = cls(model, FaceDetector(yunet_model), device, str(path))
        recognizer.engine = engine_name(model, device)
        if calibrated:
            recognizer.use_card_temperatures(path)
        return recognizer

    def with_detector(self, detector: FaceDetector) -> "EmotionRecognizer":
        """The same loaded network (engine and calibration included) with another face detector."""
        other = copy.copy(self)
        other.detector = detector
        return other

    def use_card_temperatures(self, path: str | os.PathLike) -> None:
        """Take the temperatures from the model card beside `path` (models/<name>.json, or the ensemble card)."""
        from ..models.loading import card_of
        try:
            card = ModelCard.read(card_of(path))
        except FERError:
            card = None
        temperatures = card.temperatures() if card else None
        if temperatures is None:
            given = card is not None and card.number("calibration", "plain", "temperature") is not None
            self.temperatures = {}
            self.calibration = ("uncalibrated (its card's temperature is out of range)" if given
                                else "uncalibrated (the model has no card with a temperature)")
            return
        self.temperatures = temperatures
        self.calibration = (f"calibrated on PublicTest (temperature {temperatures['plain']:.2f}, "
                            f"{temperatures['tta']:.2f} with TTA)")

    def predict(self, image: ImageSource, tta: bool = True, views: int = DEFAULT_VIEWS, detect: bool = True,
                color_order: str = "RGB", explain: bool | str | Sequence[str] = False,
                whole_if_none: bool = False) -> list[FaceResult]:
        """One FaceResult per face, largest face first; [] when no face is found.

        `image`: a path, bytes, file object, PIL image or numpy array (RGB unless color_order="BGR").
        A photo is searched thoroughly (faces cut by its edges, small photos, tilted heads: FaceDetector.detect).
        `detect=False` treats the whole image as one face (pre-cropped faces such as FER2013's);
        `whole_if_none` does so only when no face is found, and flags that result `whole_image`.
        `explain`: True adds each face's saliency map for its predicted emotion (`FaceResult.saliency`); an
        emotion's name, or several, for those emotions instead. Needs the PyTorch checkpoint (not an ONNX file).
        Bad files raise ImageError with a message naming the problem.
        """
        rgb = read_image(image, color_order=color_order)
        faces = self.detector.detect(rgb, thorough=True) if detect else [whole_image_face(rgb)]
        fallback = detect and not faces and whole_if_none
        results = self.classify(rgb, [whole_image_face(rgb)] if fallback else faces, views if tta else 1, explain)
        for result in results if fallback else []:
            result.whole_image = True
        return results

    def classify(self, rgb: np.ndarray, faces: list[Face], views: int = 1,
                 explain: bool | str | Sequence[str] = False) -> list[FaceResult]:
        """Emotions of given face boxes in an RGB uint8 image; `views` > 1 is TTA; `explain` as in predict."""
        if not 1 <= views <= MAX_VIEWS:
            raise ValueError(f"TTA views must be between 1 and {MAX_VIEWS}, got {views}")
        if not faces:
            return []
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        crops = np.stack([crop_face(gray, f.box, angle=f.angle) for f in faces])
        probs = predict_images(self.model, crops, views, batch_size=max(256, views * len(faces)),
                               device=self.device)
        if self.temperatures:
            probs = scaled(probs, self.temperatures["tta" if views > 1 else "plain"])
        results = []
        for face, p in zip(faces, probs):
            p = p / p.sum()
            best = int(p.argmax())
            results.append(FaceResult(face.box, EMOTIONS[best], float(p[best]),
                                      {e: float(v) for e, v in zip(EMOTIONS, p)}, face.score, face.angle))
        if explain is not False:
            self._add_saliency(results, crops, views, explain, rgb.shape)
        return results

    def explained_model(self) -> torch.nn.Module:
        """The PyTorch network behind the engine (loaded once): saliency needs gradients, which ONNX Runtime
        does not give. Raises SaliencyUnavailable for an ONNX file."""
        from ..evaluation.saliency import SaliencyUnavailable
        from ..models.loading import load_model
        from ..models.onnx import OnnxModel
        if self._explained is None:
            if not isinstance(self.model, OnnxModel):
                self._explained = self.model
            elif Path(self.source).suffix == ".onnx":
                raise SaliencyUnavailable(f"saliency maps need the PyTorch checkpoint (.pt or an ensemble's .json); "
                                          f"{Path(self.source).name} is an ONNX export")
            else:
                self._explained = load_model(self.source, self.device)
        return self._explained

    def _add_saliency(self, results: list[FaceResult], crops: np.ndarray, views: int,
                      explain: bool | str | Sequence[str], shape: tuple[int, ...]) -> None:
        from ..evaluation.saliency import saliency_maps
        wanted = [[r.label] for r in results] if explain is True else \
            [[explain] if isinstance(explain, str) else list(explain)] * len(results)
        unknown = {e for names in wanted for e in names} - set(EMOTIONS)
        if unknown:
            raise ValueError(f"unknown emotion {sorted(unknown)}: expected some of {', '.join(EMOTIONS)}")
        rows = [(i, name) for i, names in enumerate(wanted) for name in names]
        maps = saliency_maps(self.explained_model(), crops[[i for i, _ in rows]],
                             [EMOTIONS.index(name) for _, name in rows], views, self.device)
        for (i, name), m in zip(rows, maps):
            side = crop_region(results[i].box, shape)[2]
            results[i].saliency[name] = cv2.resize(m, (side, side), interpolation=cv2.INTER_LINEAR)

    def predict_video(self, path: str | os.PathLike, every_n: int = 5, tta: bool = False,
                      views: int = DEFAULT_VIEWS, detect: bool = True, keep_frames: bool = False
                      ) -> Iterator[FrameResult]:
        """Results for every `every_n`-th frame (0, n, 2n...). Bad videos raise ImageError on first use.

        `keep_frames` attaches each sampled RGB frame to its result (for drawing an annotated video).
        """
        from .video import iter_frames
        for index, time_s, rgb in iter_frames(path, every_n):
            faces = self.detector.detect(rgb) if detect else [whole_image_face(rgb)]
            yield FrameResult(index, time_s, self.classify(rgb, faces, views if tta else 1),
                              rgb if keep_frames else None)
