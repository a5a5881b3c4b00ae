"""Live: the webcam through streamlit-webrtc."""
