"""One servicer per service in protos/see/v1: convert, call the use case, convert back."""
