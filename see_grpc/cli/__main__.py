"""`python -m see_grpc.cli`, the same as the `see` command."""

from see_grpc.cli.app import main

main()
