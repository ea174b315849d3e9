"""The SmolVLA network: vision tower, connector, truncated decoder, action expert, flow matching.

Pure PyTorch: no logging, file or network I/O, no robot or dataset knowledge.
"""
