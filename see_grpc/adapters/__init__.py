"""Adapters: the concrete storage, bus and broker implementations of the ports in see_grpc.service.ports."""
