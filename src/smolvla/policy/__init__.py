"""The policy layer: a SmolVLA model plus transforms, normalisation stats, tokenizer and checkpoint I/O.

Main entry points: `SmolVLAPolicy` (policy.py), `PolicyConfig` (config.py), `load_lerobot_policy`
(lerobot.py), `make_tiny_policy` (testing.py, an offline random-weight policy for tests).
"""
