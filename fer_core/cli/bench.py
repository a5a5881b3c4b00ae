"""`bench`: speed figures, printed, never asserted."""
from __future__ import annotations

from .common import fraction, data_option, engine_option, models_dir_option


def cmd_bench(args) -> int:
    if args.what == "live":
        from ..bench.live import run
    elif args.what == "live-browser":
        return _live_browser(args)
    elif args.what == "predict":
        from ..bench.predict import run
    elif args.what == "evaluate":
        from ..bench.evaluate import run
    elif args.what == "zoo":
        from ..bench.zoo import run
    elif args.what == "detection":
        from ..bench.detection import run
    elif args.what == "framing":
        from ..bench.framing import run
    elif args.what == "training":
        from ..bench.training import run
    else:
        from ..bench.models import run_benchmarks as run
    code = run(args)
    return code if isinstance(code, int) else 0  # a benchmark that skipped something says so with 1


def _live_browser(args) -> int:
    """The browser benchmark lives outside the library (benchmarks/, above the dashboard it drives): run it as the
    script of a source checkout, never imported."""
    import subprocess
    import sys

    from ..errors import FERError
    from ..paths import PROJECT_ROOT
    if not (PROJECT_ROOT / "benchmarks" / "live_browser.py").is_file():
        raise FERError("bench live-browser runs from a source checkout: benchmarks/ beside fer_core/ (see README)")
    options = ["--seconds", str(args.seconds), *(["--server-env", *args.server_env] if args.server_env else []),
               *(["--no-ceiling"] if args.no_ceiling else [])]
    return subprocess.run([sys.executable, "-m", "benchmarks.live_browser", *options], cwd=PROJECT_ROOT).returncode


def add_parsers(commands) -> None:
    from ..evaluation.tta import DEFAULT_VIEWS, views_arg
    from ..models.registry import list_models
    bench = commands.add_parser("bench", help="speed benchmarks: decode, cache, training and evaluation images/s")
    data_option(bench)
    bench.add_argument("--arch", nargs="*", default=list(list_models()), help="architectures to time")
    bench.add_argument("--device", default="auto")
    bench.add_argument("--batch-size", type=int, default=128)
    bench.add_argument("--seconds", type=float, default=10.0, help="time budget per measurement")
    bench.add_argument("--no-predict", action="store_true", help="skip the one-photo prediction benchmark")
    bench.add_argument("--no-eval", action="store_true", help="skip the evaluation (TTA) figures")
    bench.add_argument("--time-to-accuracy", type=fraction, nargs="+", metavar="TARGET",
                       help="also train each --arch for real and report the training time to each of these "
                            "PrivateTest accuracies (e.g. 0.68 0.70)")
    bench.add_argument("--from-run", metavar="RUN_DIR",
                       help="only report the time-to-accuracy of a finished run trained with --track-test")
    bench.add_argument("--epochs", type=int, default=30, help="epoch budget of the time-to-accuracy run")
    bench.add_argument("--epoch-size", type=int, help="images per epoch of the time-to-accuracy run (default all)")
    bench.add_argument("--compile", action="store_true", help="torch.compile in the time-to-accuracy run")
    bench.set_defaults(func=cmd_bench, what="models")
    kinds = bench.add_subparsers(dest="what", metavar="{live,live-browser,predict,evaluate,zoo,training,detection,framing}",
                                 help="instead of the models' figures: the Live page's frame rate, one photo end to end, "
                                      "or evaluation's speed per engine")
    bench_live = kinds.add_parser("live", help="the Live page's frame processing on a 640x480 clip")
    bench_live.add_argument("--model", default=None, help="checkpoint (default: models/default.pt)")
    engine_option(bench_live)
    bench_live.add_argument("--clip", default=None, help="a video file instead of the generated astronaut clip")
    bench_live.add_argument("--seconds", type=float, default=5.0, help="measuring time per setting")
    bench_live.add_argument("--detect-every", type=int, nargs="+", default=[1, 3, 5])
    bench_live.add_argument("--tta-views", type=views_arg, default=2, help="views for the TTA-on rows")
    bench_live.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    bench_browser = kinds.add_parser("live-browser", help="the Live page in Chromium with a 30 fps fake camera, "
                                     "against a pass-through callback (the WebRTC path's ceiling)")
    bench_browser.add_argument("--seconds", type=float, default=20.0, help="readings per mode, one a second")
    bench_browser.add_argument("--server-env", nargs="*", metavar="KEY=VALUE", help="environment of the dashboard server "
                               "(experiments, e.g. OMP_NUM_THREADS=1)")
    bench_browser.add_argument("--no-ceiling", action="store_true", help="skip the pass-through run")
    bench_evaluate = kinds.add_parser("evaluate", help="evaluate --tta's speed with each engine (PyTorch fp32 and "
                                      "bf16, ONNX Runtime fp32 and int8) on PrivateTest, in one run")
    bench_evaluate.add_argument("--checkpoint", help="default: models/default.pt")
    bench_evaluate.add_argument("--views", type=views_arg, default=DEFAULT_VIEWS, help="TTA views (default %(default)s)")
    bench_evaluate.add_argument("--limit", type=int, help="only the first N PrivateTest faces (default all 3,589)")
    data_option(bench_evaluate)
    bench_detection = kinds.add_parser("detection", help="faces found on labelled photos (clean and stress copy) and "
                                       "false faces on photos without one, plain scan and thorough search")
    bench_detection.add_argument("--photos", metavar="DIR|CSV", help="labelled photos (as evaluate --photos)")
    bench_detection.add_argument("--yunet", metavar="ONNX", help="YuNet's model file instead of the Haar cascade")
    bench_framing = kinds.add_parser("framing", help="where a detector's box sits in FER2013's 48x48 crops: the frame "
                                     "crops of real photos are cut to (inference/framing.py)")
    data_option(bench_framing)
    bench_framing.add_argument("--faces", type=int, default=3000, help="training faces measured (default %(default)s)")
    bench_framing.add_argument("--yunet", metavar="ONNX", help="YuNet's model file instead of the Haar cascade")
    bench_zoo = kinds.add_parser("zoo", help="ms per face of each shipped model and ensemble (one thread, TTA off "
                                 "and on, the engine auto picks); --write stores them in the cards")
    bench_zoo.add_argument("--write", action="store_true", help="store the figures in the model cards")
    models_dir_option(bench_zoo)
    bench_training = kinds.add_parser("training", help="what speeds up training here: the training step with each "
                                      "layout, batch size, crop and thread count, against the default, in one run")
    bench_training.add_argument("--arch", default="fer_vgg_small")
    bench_training.add_argument("--device", default="auto")
    bench_training.add_argument("--seconds", type=float, default=10.0, help="measuring time per row")
    bench_predict = kinds.add_parser("predict", help="one photo end to end: decode, detection, classification")
    bench_predict.add_argument("--checkpoint", help="default: models/default.pt, else an untrained fer_vgg_small")
    bench_predict.add_argument("--repeats", type=int, default=30)
    bench_predict.add_argument("--yunet", help="time YuNet detection with this ONNX file instead of Haar")
    bench_predict.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
