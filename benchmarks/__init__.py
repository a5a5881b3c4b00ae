"""Benchmarks that drive the dashboard from outside, as a user's browser does: Chromium against a running
`streamlit run dashboard/Home.py`. They sit above the dashboard, outside the library: `fer_core` never imports
them (`python -m fer_core bench live-browser` runs `python -m benchmarks.live_browser` in a source checkout), and
the browser tests share the harness (`tests/browser_harness.py`)."""
