"""Live in a real browser: Chromium's fake camera plays a 640x480 face clip at 30 frames per second into the
Live page, and the page's own two rates (frames received, frames processed) are read for a while. Then the
same with a frame callback that does nothing (FER_LIVE_PASS_THROUGH=1): the ceiling of the WebRTC path on
this machine, browser and encoders included. Our processed rate is reported as a ratio to that ceiling.

    python -m fer_core bench live-browser [--seconds 20]      (or: python -m benchmarks.live_browser ...)

Needs Debian's chromium and Playwright (the test dependencies).
"""
from __future__ import annotations

import argparse
import os
import sys
import platform
import re
import statistics
import tempfile
import time
from pathlib import Path

import cv2

from fer_core.bench.sample_faces import astronaut_clip
from fer_core.errors import FERError

PROCESSING = re.compile(r"Processing rate: ([\d.]+) frames per second \((\d+) ms per frame\).*? received from the camera: "
                        r"([\d.]+)")
PASS_THROUGH = re.compile(r"Pass-through \(no processing\): ([\d.]+) frames per second received, ([\d.]+) passed on")
LABEL = re.compile(r"Face 1: (\w+)")


def write_clip(path: Path, frames: int = 60, fps: int = 30) -> Path:
    """A YUV4MPEG2 clip Chromium plays as its fake camera, in a loop: the astronaut's head, moving."""
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W640 H480 F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in astronaut_clip(frames):
            fh.write(b"FRAME\n" + cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def read_rates(clip: Path, seconds: float, pass_through: bool, server_env: dict | None = None) -> dict:
    """Median rates the Live page shows, sampled once a second for `seconds` after a 10 s warm-up."""
    from .browser import chromium_page, dashboard_server, wait_for_app
    env = {**(server_env or {}), "FER_LIVE_PASS_THROUGH": "1" if pass_through else "0"}
    camera = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-video-capture={clip}"]
    with dashboard_server(env) as url, chromium_page(camera) as page:
        page.goto(f"{url}/live", timeout=60_000)
        page.get_by_text("Press START").first.wait_for(timeout=90_000)
        wait_for_app(page)
        frame = page.frame_locator('iframe[title="streamlit_webrtc.component.webrtc_streamer"]')
        frame.get_by_role("button", name=re.compile("start", re.I)).click(timeout=30_000)
        page.get_by_text("Pass-through" if pass_through else "Processing rate").first.wait_for(timeout=60_000)
        time.sleep(10)
        processed, received, labels, ms = [], [], [], []
        for _ in range(int(seconds)):
            text = page.inner_text("body")
            if pass_through and (m := PASS_THROUGH.search(text)):
                received.append(float(m.group(1)))
                processed.append(float(m.group(2)))
            elif not pass_through and (m := PROCESSING.search(text)):
                processed.append(float(m.group(1)))
                ms.append(float(m.group(2)))
                received.append(float(m.group(3)))
                labels += LABEL.findall(text)[:1]
            time.sleep(1)
    median = lambda xs: statistics.median(xs) if xs else 0.0  # noqa: E731
    return {"processed": median(processed), "received": median(received), "ms": median(ms), "samples": len(received),
            "label": max(set(labels), key=labels.count) if labels else None}


def run(args) -> None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        raise FERError("bench live-browser needs Playwright (pip install playwright) and Debian's chromium") from None
    from .browser import CHROMIUM
    if not Path(CHROMIUM).exists():
        raise FERError("bench live-browser needs Debian's chromium (apt-get install chromium)")
    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, browser and server "
          f"on the same machine; load average before: {os.getloadavg()[0]:.1f}")
    server_env = dict(item.split("=", 1) for item in args.server_env or [])
    if server_env:
        print(f"server environment: {server_env}")
    with tempfile.TemporaryDirectory() as folder:
        clip = write_clip(Path(folder) / "face-30fps.y4m")
        ours = read_rates(clip, args.seconds, pass_through=False, server_env=server_env)
        ceiling = read_rates(clip, args.seconds, pass_through=True, server_env=server_env) if not args.no_ceiling else \
            {"received": 0.0, "processed": 0.0, "samples": 0}
    print(f"camera: 640x480 at 30 frames/s (Chromium's fake camera); medians of {ours['samples']} and "
          f"{ceiling['samples']} one-second readings after 10 s of warm-up")
    print(f"Live page:     {ours['processed']:5.1f} frames/s processed ({ours['ms']:.0f} ms per frame), "
          f"{ours['received']:5.1f} received; label {ours['label']}")
    print(f"pass-through:  {ceiling['received']:5.1f} frames/s received, {ceiling['processed']:5.1f} passed on "
          f"(the newest of each batch): the WebRTC path's ceiling")
    if ceiling["received"] and ceiling["processed"]:
        print(f"ratio:         {ours['processed'] / ceiling['processed']:.2f} of the frames the pass-through passes on, "
              f"{ours['processed'] / ceiling['received']:.2f} of the frames it receives")


def parser() -> argparse.ArgumentParser:
    """`python -m fer_core bench live-browser`'s own options: defined once, in the command's parser."""
    from fer_core.cli import build_parser, command_parser
    return command_parser(build_parser(), ["bench", "live-browser"])


def main(argv: list[str] | None = None) -> int:
    try:
        run(parser().parse_args(argv))
    except FERError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
