"""Networks and model files: the architecture registry (registry), checkpoints (checkpoints), saved ensembles
(ensemble), ONNX export and runtime (onnx), the one loader for any model file (loading), and where and in which
precision a network runs (devices, precision)."""
