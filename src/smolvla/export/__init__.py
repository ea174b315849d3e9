"""Export a policy to ONNX (`export_policy`) for the torch-free runtime in `smolvla.deploy`."""
