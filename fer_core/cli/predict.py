"""`predict`: the emotions of the faces in photos and videos, with optional heat maps."""
from __future__ import annotations

import itertools
import json
import sys

from ..errors import FERError
from ..paths import os_reason, shown
from .common import json_option, tta_views_option, engine_option


def cmd_predict(args) -> int:
    """Emotions per face in each file; a file's failure is reported in its entry, the others go on."""
    from ..inference.analysis import analyse_video
    from ..inference.images import is_video_name
    from ..inference.recognizer import EmotionRecognizer
    if args.every_n < 1:
        print("error: --every-n must be at least 1", file=sys.stderr)
        return 2
    if args.explain is not None:  # before any model loads or photo is read
        _heat_map_folder(args.explain)
    rec = EmotionRecognizer.load(args.checkpoint, yunet_model=args.yunet, engine=args.engine,
                                 batch=args.tta_views if args.tta else 1, calibrated=not args.uncalibrated)
    if not args.json:
        print(f"{rec.source}, run by {rec.engine}; confidences {rec.calibration}", file=sys.stderr)
    options = dict(tta=args.tta, views=args.tta_views, detect=not args.no_detect)
    photo_options = dict(options, whole_if_none=args.whole_if_none)
    entries, used_stems = [], set()
    for file in args.files:
        try:
            if is_video_name(file):
                frames = analyse_video(rec, file, args.every_n, args.tta_views if args.tta else 1,
                                       detect=not args.no_detect).frames
                entries.append({"file": file, "frames": frames, **(
                    {"note": "--explain: heat maps are written for photos only"} if args.explain else {})})
            elif args.explain:
                entries.append({"file": file, "faces": _explained_faces(rec, file, args.explain, photo_options,
                                                                         used_stems)})
            else:
                entries.append({"file": file, "faces": [f.to_dict() for f in rec.predict(file, **photo_options)]})
        except FERError as exc:
            entries.append({"file": file, "error": str(exc)})
        if not args.json:
            _print_prediction(entries[-1])
    if args.json:
        print(json.dumps(entries, indent=2))
    return 1 if any("error" in e for e in entries) else 0


def _heat_map_folder(text: str) -> None:
    """--explain's folder: an existing one, or a new one inside an existing folder (like mkdir, not mkdir -p)."""
    from pathlib import Path

    from ..paths import is_folder
    folder = Path(text)
    if is_folder(folder):
        return
    if folder.exists() or folder.is_symlink():
        raise FERError(f"--explain {shown(folder, 200)} is not a folder")
    if not is_folder(folder.parent):
        raise FERError(f"--explain {shown(folder, 200)}: its parent folder does not exist; create it first")
    try:
        folder.mkdir()
    except OSError as exc:
        raise FERError(f"--explain {shown(folder, 200)}: {os_reason(exc)}") from None


def _explained_faces(rec, file: str, out_dir: str, options: dict, used_stems: set[str]) -> list[dict]:
    """Each face's result with `saliency_png`: its crop under the saliency map of its emotion, written to
    out_dir/<file stem>-face<N>-<emotion>.png; a stem already used in this command (a/x.jpg, b/x.jpg, a/x.png)
    gets -2, -3, ... so no heat map overwrites another."""
    from pathlib import Path

    from PIL import Image

    from ..evaluation.saliency import SaliencyUnavailable
    from ..inference.annotate import face_heat_map
    from ..inference.framing import crop_region
    from ..inference.images import read_image
    from ..paths import atomic_write, derived_name, named_path
    rgb = read_image(file)
    try:
        results = rec.predict(rgb, explain=True, **options)
    except SaliencyUnavailable as exc:
        raise FERError(str(exc)) from None
    stem = derived_name(Path(file).stem, "image", room=48)
    stem = next(f"{stem}-{n}" if n > 1 else stem for n in itertools.count(1)
                if (f"{stem}-{n}" if n > 1 else stem) not in used_stems)
    used_stems.add(stem)
    faces = []
    for k, face in enumerate(results, 1):
        side = min(512, max(96, crop_region(face.box, rgb.shape)[2]))
        name = f"{stem}-face{k}-{face.label}"
        out = named_path(out_dir, name, ".png", "heat map file")
        with atomic_write(out, "writing a heat map", suffix=".png") as tmp:
            Image.fromarray(face_heat_map(rgb, face, side=side)).save(tmp)
        faces.append({**face.to_dict(), "saliency_png": str(out)})
    return faces


def _print_prediction(entry: dict) -> None:
    if "error" in entry:
        print(f"{entry['file']}: error: {entry['error']}", file=sys.stderr)
        return
    def describe(faces):
        return ", ".join(f"{f['label']} {f['confidence']:.0%} " + ("(no face found: the whole photo read as one face)"
                                                                  if f.get("whole_image") else f"at {f['box']}")
                         for f in faces) or "no face found (--whole-if-none reads the whole photo as one face)"
    if "frames" in entry:
        print(f"{entry['file']}: {len(entry['frames'])} frames analysed")
        for frame in entry["frames"]:
            print(f"  frame {frame['frame']} ({frame['time']:.2f}s): {describe(frame['faces'])}")
        if "note" in entry:
            print(f"  {entry['note']}")
        return
    print(f"{entry['file']}: {describe(entry['faces'])}")
    for face in entry["faces"]:
        if "saliency_png" in face:
            print(f"  heat map of face {face['box']}: {face['saliency_png']}")


def add_parsers(commands) -> None:
    predict = commands.add_parser("predict", help="emotions of the faces in photos (and videos)")
    predict.add_argument("files", nargs="+", metavar="FILE", help="jpg, png, webp, bmp, gif; or mp4, avi, mov, webm")
    predict.add_argument("--checkpoint", help="a checkpoint (default: the shipped model, models/default.pt)")
    predict.add_argument("--tta", action="store_true", help="test-time augmentation")
    tta_views_option(predict)
    predict.add_argument("--no-detect", action="store_true", help="each image is one face (pre-cropped faces)")
    predict.add_argument("--whole-if-none", action="store_true",
                         help="a photo where no face is found is read whole as one face, marked \"whole_image\"")
    predict.add_argument("--yunet", help="YuNet ONNX file for face detection (default $FER_YUNET_MODEL, else Haar)")
    predict.add_argument("--every-n", type=int, default=5, help="videos: analyse every n-th frame (default %(default)s)")
    engine_option(predict)
    predict.add_argument("--uncalibrated", action="store_true",
                         help="raw softmax confidences (default: temperature-scaled with the model card's temperature)")
    predict.add_argument("--explain", metavar="OUTDIR",
                         help="also write each face's saliency heat map (Grad-CAM: where the network found its "
                              "emotion) as OUTDIR/<photo>-face<N>-<emotion>.png; photos only, needs a PyTorch "
                              "checkpoint (not an ONNX file)")
    json_option(predict, "a JSON list: per file, file and faces (or frames) or error")
    predict.set_defaults(func=cmd_predict)
