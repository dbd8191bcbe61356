"""The REST shim: grpc-gateway-compatible HTTP/JSON routes derived from the google.api.http annotations."""
