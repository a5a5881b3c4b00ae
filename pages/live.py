import streamlit as st

st.title("Live")
st.info("Coming next: real-time emotion recognition from your webcam (streamlit-webrtc), "
        "with per-face smoothing and an emotion-over-time chart.")
