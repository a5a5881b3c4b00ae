"""Predict: the emotion of every face in uploaded photos and videos, with downloads of the results."""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import cv2
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from dashboard.shared import model_cache
from dashboard.shared.model_picker import model_choices
from fer_core.errors import FERError
from fer_core.evaluation import DEFAULT_VIEWS, MAX_VIEWS, SaliencyUnavailable
from fer_core.inference import (IMAGE_EXTENSIONS, IMAGE_FORMATS, MAX_PIXELS, VIDEO_EXTENSIONS, YUNET_ENV,
                                EmotionRecognizer, FaceDetector, FaceResult, analyse_video, crop_face, crop_region,
                                draw_faces, draw_saliency, face_heat_map, face_rows, read_image)
from fer_core.labels import EMOTION_COLORS, EMOTIONS

OTHER_CHECKPOINT = "Another checkpoint file…"
PREDICTED = "the predicted emotion"


@st.cache_resource(max_entries=4)
def load_detector(yunet_model: str) -> FaceDetector:
    return FaceDetector(yunet_model or None)


def settings() -> tuple[EmotionRecognizer | None, dict]:
    """The settings row; returns the recognizer (None when no model can be loaded) and predict options."""
    model_col, tta_col, face_col = st.columns([2, 1, 1])  # the model labels carry accuracy and speed
    with model_col:
        more = st.session_state.get("more_models", False)
        choices = model_choices(more=more) or model_choices()  # no shipped model: offer the runs at once
        labels = [label for label, _ in choices] + [OTHER_CHECKPOINT]
        choice = st.selectbox("Model", labels, key="model")
        st.toggle("More models (runs, ONNX)", key="more_models", help="your finished runs and exported ONNX files")
        if choice == OTHER_CHECKPOINT:
            path = st.text_input("Checkpoint path", key="checkpoint_path",
                                 placeholder="runs/<run>/best.pt, models/<name>.pt or an exported .onnx").strip()
            if not choices:
                st.caption("No shipped model or finished run yet: train one on the Train page, "
                           "or give a checkpoint path.")
        else:
            path = str(dict(choices)[choice])
    with tta_col:
        tta = st.toggle("Test-time augmentation", value=True, key="tta",
                        help="Averages the prediction over flipped and shifted views of each face.")
        views = st.slider("TTA views", 2, MAX_VIEWS, DEFAULT_VIEWS, key="views", disabled=not tta)
    with face_col:
        whole = st.toggle("Whole image is one face", key="whole_image",
                          help="For photos that are already face crops, such as FER2013's 48x48 images.")
        yunet = st.text_input("YuNet model file (optional)", value=os.environ.get(YUNET_ENV, ""), key="yunet",
                              disabled=whole, help="face_detection_yunet*.onnx from OpenCV's model zoo; "
                                                   "empty: OpenCV's Haar cascade, which needs no download.")
    heat_col, class_col, _ = st.columns([1, 1, 2])
    explain = heat_col.toggle("Saliency heat maps", key="explain",
                              help="Grad-CAM: where on each face the network found the evidence for an emotion "
                                   "(red: most). Computed with the PyTorch network, so it takes a moment more.")
    emotion = class_col.selectbox("Heat map of", [PREDICTED, *EMOTIONS], key="explain_emotion", disabled=not explain)
    options = {"views": views if tta else 1, "detect": not whole,
               "explain": (True if emotion == PREDICTED else emotion) if explain else False}
    if not path:
        st.info("Choose a model to start.")
        return None, options
    try:
        model = model_cache.recognizer(path)
    except FERError as exc:
        st.error(str(exc))
        return None, options
    model_col.caption(f"Using {path} · run by {model.engine} · confidences {model.calibration}")
    detector = model.detector
    if not whole:
        try:
            detector = load_detector(yunet.strip())
        except FERError as exc:
            st.warning(f"{exc}. Using the Haar cascade instead.")
    return model.with_detector(detector), options


def classify(rec: EmotionRecognizer, rgb, options: dict, whole_if_none: bool = False) -> list[FaceResult]:
    """The recognizer's own photo pipeline (a thorough search, eyes levelled, FER2013's framing)."""
    predict = dict(tta=options["views"] > 1, views=options["views"], detect=options["detect"],
                   whole_if_none=whole_if_none)
    try:
        return rec.predict(rgb, explain=options["explain"], **predict)
    except SaliencyUnavailable as exc:
        st.warning(f"No heat maps for this model: {exc}.")
        return rec.predict(rgb, **predict)


def network_input(rgb, result: FaceResult, side: int = 96):
    """The 48x48 grayscale face the network read, enlarged (nearest neighbour: its own pixels) for showing."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(crop_face(gray, result.box, angle=result.angle), (side, side), interpolation=cv2.INTER_NEAREST)


def probability_chart(probabilities: dict[str, float], height: int = 230) -> go.Figure:
    fig = go.Figure(go.Bar(x=[probabilities[e] for e in EMOTIONS], y=list(EMOTIONS), orientation="h",
                           marker_color=[EMOTION_COLORS[e] for e in EMOTIONS],
                           text=[f"{probabilities[e]:.0%}" for e in EMOTIONS], textposition="outside"))
    fig.update_layout(height=height, margin=dict(l=0, r=10, t=10, b=0), xaxis=dict(range=[0, 1.15],
                      tickformat=".0%"), yaxis=dict(autorange="reversed"), showlegend=False)
    return fig


def png_bytes(rgb) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def photos_tab(rec: EmotionRecognizer, options: dict) -> None:
    files = st.file_uploader(
        "Photos", type=[e.lstrip(".") for e in IMAGE_EXTENSIONS], accept_multiple_files=True,
        key="photos", help=f"{IMAGE_FORMATS}, up to {MAX_PIXELS // 1_000_000} megapixels each.")
    if not files:
        st.caption("Upload one or more photos; each face gets a box, a label and its probabilities.")
        return
    report, rows = [], []
    for i, file in enumerate(files):
        with st.container(border=True):
            whole_photos = st.session_state.setdefault("whole_photos", set())
            try:
                rgb = read_image(file, name=file.name)
                results = classify(rec, rgb, options, whole_if_none=file.file_id in whole_photos)
            except FERError as exc:
                st.error(str(exc), icon="🚫")
                report.append({"file": file.name, "error": str(exc)})
                rows.append({"file": file.name, "error": str(exc)})
                continue
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
                message = f"{file.name} could not be processed ({type(exc).__name__}: {exc})"
                st.error(message, icon="🚫")
                report.append({"file": file.name, "error": message})
                rows.append({"file": file.name, "error": message})
                continue
            faces = [r.to_dict() for r in results]
            report.append({"file": file.name, "faces": faces})
            rows.extend(face_rows(file.name, faces) or [{"file": file.name, "face": 0}])
            show_photo(i, file, rgb, results, options)
    if any("faces" in entry for entry in report):
        st.subheader("Download results")
        csv_col, json_col = st.columns(2)
        csv_col.download_button("Results as CSV", pd.DataFrame(rows).to_csv(index=False), "emotions.csv",
                                "text/csv", on_click="ignore", key="csv")
        json_col.download_button("Results as JSON", json.dumps(report, indent=2), "emotions.json",
                                 "application/json", on_click="ignore", key="json")


def show_photo(i: int, file, rgb, results: list[FaceResult], options: dict) -> None:
    name = file.name
    emotion = options["explain"] if isinstance(options["explain"], str) else None
    annotated = draw_faces(draw_saliency(rgb, results, emotion), results)  # heat maps, when asked, in the PNG too
    image_col, chart_col = st.columns([3, 2])
    summary = ", ".join(f"{r.label} {r.confidence:.0%}" for r in results) or "no face found"
    image_col.image(annotated, caption=f"{name}: {summary}", width="stretch")
    image_col.download_button("Annotated PNG", png_bytes(annotated), f"{Path(name).stem}_emotions.png",
                              "image/png", on_click="ignore", key=f"png-{i}")
    with chart_col:
        if not results:
            st.info(f"No face found in {name}, even looking again for a face cut by the photo's edges, a small "
                    f"photo or a tilted head.")
            if st.button("Read the whole photo as one face", key=f"whole-{i}",
                         help="For a photo that is a face crop already. The result is marked as such."):
                st.session_state["whole_photos"].add(file.file_id)
                st.rerun()
        for j, r in enumerate(results):
            st.markdown(f"**Face {j + 1}: {r.label}** ({r.confidence:.0%})"
                        + (" · *no face was found: the whole photo was read as one face*" if r.whole_image else ""))
            shown = emotion or r.label
            seen_col, heat_col, bars_col = st.columns([1, 1, 2]) if shown in r.saliency else (*st.columns([1, 3]), None)
            seen_col.image(network_input(rgb, r), width="stretch",
                           caption="what the network read" + (f" (turned {r.angle:+.0f}°)" if r.angle else ""))
            if bars_col is None:
                bars_col = heat_col
            else:
                heat_col.image(face_heat_map(rgb, r, shown, min(192, crop_region(r.box, rgb.shape)[2])), width="stretch",
                               caption=f"where it found {shown} ({r.probabilities[shown]:.0%})")
            bars_col.plotly_chart(probability_chart(r.probabilities), key=f"chart-{i}-{j}",
                                  config={"displayModeBar": False})




def video_tab(rec: EmotionRecognizer, options: dict) -> None:
    video = st.file_uploader("Video", type=[e.lstrip(".") for e in VIDEO_EXTENSIONS], key="video",
                             help="mp4, avi, mov or webm; frames are sampled at the rate below.")
    every_n = st.number_input("Analyse every n-th frame", 1, 300, 5, key="every_n",
                              help="1 analyses every frame; 5 at 30 fps is 6 frames per second.")
    if video is None:
        return
    key = (video.file_id, every_n, options["views"], options["detect"], rec.source)
    if st.button("Analyse video", type="primary", key="analyse"):
        st.session_state["video_result"] = analyse_upload(rec, video, every_n, options) | {"key": key}
    result = st.session_state.get("video_result")
    if result and result["key"] == key:
        show_video_result(result)


def analyse_upload(rec: EmotionRecognizer, video, every_n: int, options: dict) -> dict:
    """The upload analysed (inference.analyse_video) into what show_video_result shows, or its error."""
    suffix = Path(video.name).suffix.lower()
    progress = st.progress(0.0, text=f"Analysing {video.name}…")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(video.getvalue())
        try:
            result = analyse_video(rec, path, every_n, options["views"], options["detect"], annotated_dir=tmp,
                                   name=video.name, progress=lambda done, text: progress.progress(done, text=text))
            annotated = result.annotated.read_bytes() if result.annotated else None
        except FERError as exc:
            return {"name": video.name, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a broken video must not take the page down
            return {"name": video.name, "error": f"{video.name} could not be processed ({type(exc).__name__}: {exc})"}
        finally:
            progress.empty()
    return {"name": video.name, "frames": result.frames, "video": annotated, "mime": result.mime, "fps": result.fps,
            "suffix": result.annotated.suffix if result.annotated else None}


def show_video_result(result: dict) -> None:
    if "error" in result:
        st.error(result["error"], icon="🚫")
        return
    frames, name = result["frames"], result["name"]
    faces = [f for frame in frames for f in frame["faces"]]
    with_face = sum(1 for frame in frames if frame["faces"])
    st.success(f"{name}: {len(frames):,} frames analysed, {with_face:,} with a face, {len(faces):,} faces in all.")
    if faces:
        shares = pd.Series([f["label"] for f in faces]).value_counts(normalize=True).reindex(EMOTIONS, fill_value=0.0)
        st.subheader("Summary")
        st.plotly_chart(probability_chart(shares.to_dict()), key="video-summary", config={"displayModeBar": False})
        st.caption("Share of all detected faces in the analysed frames with each emotion.")
        st.subheader("Emotions over time")
        st.plotly_chart(timeline_chart(frames), key="video-timeline", config={"displayModeBar": False})
    if result["video"]:
        st.subheader("Annotated video")
        st.video(result["video"], format=result["mime"])
    rows = [row for frame in frames for row in face_rows(name, frame["faces"], frame=frame["frame"], time=frame["time"])]
    st.dataframe(pd.DataFrame(rows), hide_index=True, height=240)
    c1, c2, c3 = st.columns(3)
    c1.download_button("Frames as CSV", pd.DataFrame(rows).to_csv(index=False), "video_emotions.csv", "text/csv",
                       on_click="ignore", key="video-csv")
    c2.download_button("Frames as JSON", json.dumps({"file": name, "frames": frames}, indent=2),
                       "video_emotions.json", "application/json", on_click="ignore", key="video-json")
    if result["video"]:
        c3.download_button("Annotated video", result["video"], f"{Path(name).stem}_emotions{result['suffix']}",
                           result["mime"], on_click="ignore", key="video-file")


def timeline_chart(frames: list[dict]) -> go.Figure:
    """Each emotion's probability over time, for the largest face of each frame (gaps where there is none)."""
    fig = go.Figure()
    times = [frame["time"] for frame in frames]
    for emotion in EMOTIONS:
        values = [frame["faces"][0]["probabilities"][emotion] if frame["faces"] else None for frame in frames]
        fig.add_trace(go.Scatter(x=times, y=values, name=emotion, mode="lines",
                                 line=dict(color=EMOTION_COLORS[emotion])))
    fig.update_layout(height=320, margin=dict(l=0, r=0, t=10, b=0), xaxis_title="seconds",
                      yaxis=dict(range=[0, 1], tickformat=".0%", title="probability (largest face)"))
    return fig


def render() -> None:
    """The Predict page (pages/predict.py runs it)."""
    st.title("Predict")
    st.caption("Emotions of the faces in your photos and videos. Faces are found with OpenCV; each is classified "
               "into angry, disgust, fear, happy, sad, surprise or neutral.")
    recognizer, predict_options = settings()
    if recognizer is not None:
        photos, videos = st.tabs(["Photos", "Video"])
        with photos:
            photos_tab(recognizer, predict_options)
        with videos:
            video_tab(recognizer, predict_options)
