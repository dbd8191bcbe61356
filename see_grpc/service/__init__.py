"""Use cases: what SEE does, written against the small interfaces in ports.py."""
