"""Using a model: EmotionRecognizer (recognizer), face detection (faces), images and videos read with limits
(images, video), labelled face folders (face_folder), boxes drawn on faces (annotate) and live frame
processing for the webcam (live).

Its public surface, the only names pages/ and dashboard/ may import from it, is `__all__` below
(fer_core/exports.py).
"""
from ..exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "draw_faces": "annotate", "draw_saliency": "annotate", "face_heat_map": "annotate",
    "saliency_overlay": "annotate", "FaceDetector": "faces", "YUNET_ENV": "faces",
    "crop_face": "framing", "crop_region": "framing", "IMAGE_EXTENSIONS": "images",
    "IMAGE_FORMATS": "images", "MAX_PIXELS": "images", "VIDEO_EXTENSIONS": "images",
    "read_image": "images", "LiveProcessor": "live", "LiveSettings": "live",
    "EmotionRecognizer": "recognizer", "FaceResult": "recognizer",
    "analyse_video": "analysis", "face_rows": "analysis",
})
