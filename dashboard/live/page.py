"""Live: the browser's webcam through streamlit-webrtc, annotated with each face's emotion.

The frame callback runs on streamlit-webrtc's worker thread and only calls LiveProcessor.process,
which never raises (errors are recorded and the frame passes through). The page reads the
processor's status every half second in a fragment, and redraws the emotion chart every two seconds.
"""
import io
import json
import os
import time

import streamlit as st
from PIL import Image

from dashboard.shared import model_cache
from dashboard.live.chart import history_figure
from dashboard.shared.model_picker import model_choices
from fer_core.errors import FERError
from fer_core.evaluation import MAX_VIEWS
from fer_core.inference import EmotionRecognizer, LiveProcessor, LiveSettings

ICE_ENV = "FER_ICE_SERVERS"
PASS_THROUGH = os.environ.get("FER_LIVE_PASS_THROUGH") == "1"  # benchmarks: the WebRTC path's own ceiling


def ice_servers() -> list:
    """ICE servers from $FER_ICE_SERVERS (JSON) or secrets.toml's `ice_servers`; none by default (localhost)."""
    raw = os.environ.get(ICE_ENV)
    if raw:
        try:
            servers = json.loads(raw)
            if isinstance(servers, list):
                return servers
        except json.JSONDecodeError:
            pass
        st.warning(f"${ICE_ENV} is not a JSON list of ICE servers; using none (fine on localhost).")
        return []
    try:
        return list(st.secrets.get("ice_servers", []))
    except FileNotFoundError:
        return []
    except Exception:  # a malformed secrets.toml must not take the page down
        return []


def load_recognizer(path: str) -> EmotionRecognizer:
    # one face at a time on one thread: the engine that is fastest so (measured on first use; ONNX Runtime on
    # the CPUs measured so far) leaves the second core to the browser and the video codecs (docs/speed.md)
    return model_cache.recognizer(path, batch=1, threads=1)


def controls() -> tuple[str, LiveSettings] | None:
    choices = model_choices(more=st.session_state.get("live_more_models", False)) or model_choices()
    if not choices:
        st.warning("No model to run: ship a default model (`python -m fer_core ship runs/RUN --name default`) or finish a run.")
        return None
    labels = [label for label, _ in choices]
    c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
    label = c1.selectbox("Model", labels)
    c1.toggle("More models (runs, ONNX)", key="live_more_models")
    tta = c2.toggle("TTA", value=False, help="test-time augmentation: each face scored in several views and "
                                               "averaged; slower, so off by default")
    views = c2.number_input("TTA views", 2, MAX_VIEWS, 2, disabled=not tta)
    smoothing = c3.slider("Smoothing", 0.0, 0.9, 0.6, 0.05,
                          help="per-face moving average of probabilities over frames: higher = steadier labels")
    detect_every = c4.slider("Run the detector every N frames", 1, 10, 3,
                             help="faces are tracked in between; 1 = detect on every frame")
    path = str(dict(choices)[label])
    # Haar misses a face now and then: a track survives 3 missed detections before it is dropped. The detector
    # runs on its own thread, so the frames it would hold up are classified at once, and between full scans it
    # searches only around the tracked faces, a quarter of the cost (README, Speed).
    return path, LiveSettings(detect_every=detect_every, smoothing=smoothing, tta_views=int(views) if tta else 1,
                              max_misses=3, detect_in_background=True, full_scan_every=5)


def session_processor(recognizer: EmotionRecognizer, settings: LiveSettings) -> LiveProcessor:
    """One processor per browser session, updated in place when the controls change."""
    processor = st.session_state.get("live_processor")
    if processor is None:
        processor = LiveProcessor(recognizer, settings)
        st.session_state["live_processor"] = processor
    else:
        processor.update(recognizer, settings)
    return processor


@st.fragment(run_every=0.5)
def live_status(processor: LiveProcessor, playing: bool) -> None:
    status = processor.status()
    now = time.monotonic()
    if not playing:
        st.info("Press **START** and allow the camera; the video goes only to this server.\n\n"
                "If the player shows **NotAllowedError**, the browser refused the camera: allow it for this site "
                "(the camera icon in the address bar) and press START again. **NotFoundError** means no camera "
                "is connected.")
        return
    started = st.session_state.setdefault("live_started_at", now)
    if PASS_THROUGH:
        st.markdown(f"Pass-through (no processing): **{status.received_fps:.1f} frames per second** received, "
                    f"**{status.batches_fps:.1f}** passed on (the newest of each batch)")
        return
    if status.frames == 0 or status.last_frame_at is None or now - status.last_frame_at > 3:
        if now - started > 5:
            st.warning("No video is arriving. Is a camera connected, and did the browser allow this page to use it? "
                       "If access was refused, allow it in the address bar and press START again.")
        else:
            st.caption("Waiting for the camera…")
        return
    lines = [f"Face {i}: **{f.label}** ({f.confidence:.0%})" for i, f in enumerate(status.faces, 1)]
    st.markdown("\n\n".join(lines) if lines else "No face in view: face the camera, in good light.")
    st.markdown(f"Processing rate: **{status.fps:.1f} frames per second** ({status.ms_per_frame:.0f} ms per frame) · "
                f"received from the camera: **{status.received_fps:.1f}** per second")
    if status.error:
        st.error(f"The frame callback failed {status.errors} time(s); those frames passed through unannotated. "
                 f"Last error: {status.error}")


@st.fragment(run_every=2.0)
def live_chart(processor: LiveProcessor, playing: bool) -> None:
    """Redrawn less often than the rates: each redraw costs the browser CPU that the video codecs need."""
    fig = history_figure(processor.history()) if playing and not PASS_THROUGH else None
    if fig is not None:
        st.plotly_chart(fig, width="stretch", key="live_history")


def snapshot_panel(processor: LiveProcessor) -> None:
    if st.button("📸 Snapshot"):
        frame = processor.snapshot()
        if frame is None:
            st.info("No frame yet: start the camera first.")
            return
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="PNG")
        st.image(frame, caption="annotated snapshot")
        st.download_button("Download the snapshot (PNG)", buffer.getvalue(), f"live-{int(time.time())}.png",
                           mime="image/png")


def render() -> None:
    """The Live page (pages/live.py runs it)."""
    st.title("Live")
    st.caption("Your webcam, annotated with each face's emotion and confidence, processed on this server.")
    chosen = controls()
    if chosen is None:
        st.stop()
    path, settings = chosen
    try:
        recognizer = load_recognizer(path)
    except FERError as exc:
        st.error(f"Cannot load {path}: {exc}")
        st.stop()
    processor = session_processor(recognizer, settings)
    st.caption(f"The network is run by {recognizer.engine or 'PyTorch'}; confidences {recognizer.calibration}.")

    try:
        import av
        from streamlit_webrtc import WebRtcMode, webrtc_streamer
    except ImportError as exc:  # streamlit-webrtc is in requirements.txt; say so instead of a traceback
        st.error(f"streamlit-webrtc is not installed ({exc}); `pip install -r requirements.txt`.")
        st.stop()

    async def on_frames(frames: list["av.VideoFrame"]) -> list["av.VideoFrame"]:
        """Every frame that queued up since the last call is counted; only the newest is processed (no backlog).
        streamlit-webrtc awaits this on its own worker thread's event loop, so the work blocks only that thread."""
        processor.received(len(frames))
        if PASS_THROUGH:
            return frames[-1:]
        annotated = processor.process(frames[-1].to_ndarray(format="rgb24"))
        return [av.VideoFrame.from_ndarray(annotated, format="rgb24")]

    video, side = st.columns([3, 2])
    with video:
        context = webrtc_streamer(
            key="live", mode=WebRtcMode.SENDRECV, rtc_configuration={"iceServers": ice_servers()},
            media_stream_constraints={"video": {"width": 640, "height": 480}, "audio": False},
            queued_video_frames_callback=on_frames, async_processing=True)
    playing = bool(context.state.playing)
    if not playing:
        st.session_state.pop("live_started_at", None)
        if st.session_state.get("live_was_playing"):
            processor.reset()
    st.session_state["live_was_playing"] = playing
    with side:
        live_status(processor, playing)
        live_chart(processor, playing)
        snapshot_panel(processor)
