"""Generates the Python stubs (vtc/v1/) and Envoy's descriptor set (gateway/vtc.pb) from proto/.

Run through `make proto`; the stubs are build output, never committed, so they
cannot go stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

import google.api  # googleapis-common-protos: google/api/annotations.proto
import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUT = ROOT
DESCRIPTOR_SET = ROOT / "gateway" / "vtc.pb"
# Envoy renders a gRPC error's details (google.rpc.Status) as JSON only if it
# knows every detail's type: ErrorMappingInterceptor attaches google.rpc.ErrorInfo.
GATEWAY_EXTRA_PROTOS = ["google/rpc/error_details.proto"]


def _includes() -> list[str]:
    googleapis = Path(next(iter(google.api.__path__))).parent.parent
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    return [f"-I{PROTO_ROOT}", f"-I{googleapis}", f"-I{well_known}"]


def main() -> int:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "vtc").rglob("*.proto"))
    args = ["grpc_tools.protoc", *_includes(), f"--python_out={OUT}", f"--pyi_out={OUT}",
            f"--grpc_python_out={OUT}", *protos]
    if protoc.main(args) != 0:
        return 1
    DESCRIPTOR_SET.parent.mkdir(parents=True, exist_ok=True)
    args = ["grpc_tools.protoc", *_includes(), "--include_imports", "--include_source_info",
            f"--descriptor_set_out={DESCRIPTOR_SET}", *protos, *GATEWAY_EXTRA_PROTOS]
    if protoc.main(args) != 0:
        return 1
    (OUT / "vtc" / "v1" / "__init__.py").write_text('"""Generated from proto/vtc/v1 by `make proto`."""\n')
    return 0


if __name__ == "__main__":
    sys.exit(main())
