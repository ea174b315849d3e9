"""Torch-free deployment of exported policies: `OnnxPolicy` (ONNX Runtime + numpy + tokenizers) reading a
directory written by `smolvla export` (layout in `manifest`)."""
