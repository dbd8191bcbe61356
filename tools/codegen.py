"""Regenerate everything derived from protos/: Python stubs with .pyi in generated/, and openapi/see.openapi.json.

The vendored buf/validate/validate.proto gets stubs too: the see.v1 stubs import it for their validation rules
(googleapis-common-protos already ships the google/api ones).

`python tools/codegen.py` writes them; `python tools/codegen.py --check` regenerates into a scratch folder and fails
when the committed files differ (CI runs it).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
THIRD_PARTY = ROOT / "third_party"
GENERATED = ROOT / "generated"
OPENAPI = ROOT / "openapi" / "see.openapi.json"
# Vendored protos whose stubs no installed package ships.
VENDORED = ("buf/validate/validate.proto",)
PACKAGE_MARKERS = (
    "see/__init__.py",
    "see/v1/__init__.py",
    "see/py.typed",
    "buf/__init__.py",
    "buf/validate/__init__.py",
    "buf/py.typed",
)


def generate_stubs(out_dir: Path) -> None:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    scripts = Path(sys.executable).parent
    args = [
        "protoc",
        f"--plugin=protoc-gen-mypy={scripts / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={scripts / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTO_ROOT}",
        f"-I{THIRD_PARTY}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *protos,
        *VENDORED,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for marker in PACKAGE_MARKERS:
        (out_dir / marker).touch()


def render_openapi() -> str:
    # Imported late: it needs the stubs this script has just written.
    from see_grpc.transport.rest.openapi import build_openapi  # noqa: PLC0415

    return json.dumps(build_openapi(), indent=2, sort_keys=True) + "\n"


def stale_files(fresh: Path, committed: Path) -> list[str]:
    fresh_files = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
    committed_files = {
        p.relative_to(committed) for p in committed.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    }
    stale = sorted(str(p) for p in fresh_files ^ committed_files)
    stale += sorted(
        str(p) for p in fresh_files & committed_files if not filecmp.cmp(fresh / p, committed / p, shallow=False)
    )
    return stale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed generated files are stale")
    check = parser.parse_args().check
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch)
        generate_stubs(fresh)
        if check:
            stale = stale_files(fresh, GENERATED)
            if OPENAPI.read_text() != render_openapi():
                stale.append(str(OPENAPI.relative_to(ROOT)))
            if stale:
                print("stale generated files (run `make generate`):", *stale, sep="\n  ", file=sys.stderr)
                return 1
            print("generated files are up to date")
            return 0
        shutil.rmtree(GENERATED, ignore_errors=True)
        shutil.copytree(fresh, GENERATED)
    OPENAPI.parent.mkdir(exist_ok=True)
    OPENAPI.write_text(render_openapi())
    print(f"wrote {GENERATED.relative_to(ROOT)}/ and {OPENAPI.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
