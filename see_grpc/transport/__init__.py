"""Entrypoints: gRPC servicers, the REST shim and what they share (auth, error mapping, call bookkeeping).

Thin by design: parse, call a use case, format. No trading logic here.
"""
