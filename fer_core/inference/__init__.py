"""Using a model: EmotionRecognizer (recognizer), face detection (faces), images and videos read with limits
(images, video), labelled face folders (face_folder), boxes drawn on faces (annotate) and live frame
processing for the webcam (live)."""
