"""Async inference: a policy server and a torch-free robot client talking websockets + msgpack.

Robot side (numpy + websockets + msgpack only): `codec`, `protocol`, `action_queue`, `robot`, `client`.
Server side: `spec`, `session`, `server` (torch-free too) and `runner` (the one module that imports torch,
adapting wire arrays to the policy contract). The wire format is documented in docs/protocol.md.
"""
