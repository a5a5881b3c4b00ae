"""`export`: a checkpoint or saved ensemble to ONNX, fp32 or int8, checked against PyTorch."""
from __future__ import annotations

import sys

from ..errors import FERError
from .common import data_option


def cmd_export(args) -> int:
    """Export a checkpoint or saved ensemble to ONNX (or int8), then check the export against PyTorch."""
    import numpy as np

    from ..data.fer2013 import load_dataset
    from ..evaluation.export_check import check_int8, verify_export
    from ..models.loading import export_onnx
    from ..paths import output_file
    output_file(args.onnx, "--onnx file", ".onnx")  # before minutes of quantizing and checking
    if args.int8:
        return _export_int8(args, check_int8)
    path = export_onnx(args.checkpoint, args.onnx)
    print(f"exported {args.checkpoint} to {path} ({path.stat().st_size / 2 ** 20:.1f} MB)")
    try:
        images, what = load_dataset(args.data)["test"].images[:args.check_images], "PrivateTest images"
    except FERError:  # no dataset here: the check still runs, on random faces
        images = np.random.default_rng(0).integers(0, 256, (args.check_images, 48, 48), dtype=np.uint8)
        what = "random 48x48 images (no dataset found)"
    check = verify_export(args.checkpoint, path, images)
    print(f"check on {check['n']} {what}: largest probability difference {check['max_abs_diff']:.2e}, "
          f"top-1 agreement {check['top1_agreement']:.2%} (onnxruntime vs PyTorch fp32)")
    if check["max_abs_diff"] >= 1e-3:
        print("error: the export differs from PyTorch by 1e-3 or more: do not use it", file=sys.stderr)
        return 1
    return 0


def _export_int8(args, check_int8) -> int:
    """int8: calibrated on training faces, then checked on all of PrivateTest; a failed check leaves no file."""
    from ..data.fer2013 import load_dataset
    from ..models.loading import cached_export
    from ..models.quantize import calibration_faces, quantize_onnx
    dataset = load_dataset(args.data)  # calibration and the check need the real faces
    path = quantize_onnx(cached_export(args.checkpoint), args.onnx, calibration_faces(args.data))
    check = check_int8(args.checkpoint, path, dataset["test"])
    for mode, c in check["modes"].items():
        print(f"{mode}: top-1 agreement with PyTorch fp32 {c['top1_agreement']:.2%}, accuracy {c['accuracy']:.2%} "
              f"against {c['reference_accuracy']:.2%} ({c['n']:,} PrivateTest faces)")
    if not check["passed"]:
        path.unlink(missing_ok=True)
        print(f"error: the int8 model misses its targets ({check['problem']}): not written", file=sys.stderr)
        return 1
    print(f"exported {args.checkpoint} as int8 to {path} ({path.stat().st_size / 2 ** 20:.1f} MB)")
    return 0


def add_parsers(commands) -> None:
    export = commands.add_parser("export", help="export a checkpoint or saved ensemble to ONNX (checked against PyTorch)")
    export.add_argument("checkpoint", help="a .pt checkpoint or a saved ensemble (models/<name>.json)")
    export.add_argument("--onnx", required=True, metavar="OUT.onnx", help="the ONNX file to write")
    data_option(export, "dataset for the check (default $FER_DATA, then data/)")
    export.add_argument("--check-images", type=int, default=256, help="PrivateTest images compared (default 256)")
    export.add_argument("--int8", action="store_true",
                        help="quantize to int8 (ONNX Runtime, static QDQ, calibrated on 300 training faces); checked "
                             "on all of PrivateTest, plain and with TTA: refused below 99%% top-1 agreement with "
                             "PyTorch fp32 or more than 0.5 points of accuracy lost")
    export.set_defaults(func=cmd_export)
