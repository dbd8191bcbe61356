"""``python -m bench``: every benchmark in turn; ``python -m bench NAME [OPTIONS]``: one, with its own options.

A benchmark is a module ``bench/<name>.py`` with ``main(argv: list[str]) -> None``; adding the file registers it.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench


def benchmarks() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))


def run(name: str, argv: list[str]) -> None:
    importlib.import_module(f"bench.{name}").main(argv)


def main(argv: list[str]) -> int:
    names = benchmarks()
    if not argv:
        for name in names:
            print(f"== {name}", flush=True)
            run(name, [])
        return 0
    if argv[0] not in names:
        print(f"usage: python -m bench [{'|'.join(names)}] [options]", file=sys.stderr)
        return 0 if argv[0] in ("-h", "--help") else 2
    run(argv[0], argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
