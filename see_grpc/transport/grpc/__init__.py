"""The gRPC entrypoint: servicers, the call interceptor and the server."""
