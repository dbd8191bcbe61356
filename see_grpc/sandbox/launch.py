"""A worker process's entry point: `python -m see_grpc.sandbox.launch MEMORY_BYTES TEMP_DIR [--unrestricted-for-tests]`.

The kernel lets a process enter a new user or mount namespace only while it has a single thread, and pandas'
pyarrow starts threads on import: so the namespaces come first, the worker's imports after.
"""

from __future__ import annotations

from see_grpc.sandbox import isolation


def main() -> None:
    isolation.die_with_parent()
    namespaces = isolation.enter_namespaces()
    from see_grpc.sandbox import worker  # noqa: PLC0415 - imported inside the namespaces, see above

    worker.main(namespaces)


if __name__ == "__main__":
    main()
