"""`see`, the command line for people: a client of a running SEE server over gRPC (see `see --help`)."""
