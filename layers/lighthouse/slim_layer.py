"""Drop from an installed layer what no function loads at run time (a build step, not shipped).

- botocore's API models of services the functions never call: they are ~28 MB of the ~30 MB botocore
  takes, and botocore reads only the model of a service a client is made for. `SERVICES` lists the
  ones kept; a unit test checks that every `client("...")` in the layer's and the functions' code is
  among them, and `lighthouse up` loads each kept model from the built layer before it runs.
- the console scripts pip writes to `bin/` (chalice's, jsonschema's): nothing on Lambda runs them.
- debug symbols of the compiled extensions (cedarpy, jsonschema-rs, pydantic-core, ...), when
  binutils' `strip` is on the build machine: the code is unchanged, the files about half as big.

No library does this for a Lambda layer built by `sam build`; it is two loops, written here.

    python slim_layer.py DIRECTORY
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

# Called by the functions (see the test), plus what botocore's own credential providers call.
SERVICES = frozenset(
    {
        "dynamodb", "dynamodbstreams", "sqs", "stepfunctions", "secretsmanager", "s3", "bedrock-runtime", "iot-data",
        "lambda",  # the MCP function invokes the API function
        "ssm", "appconfigdata",  # Powertools parameters and feature flags
        "appconfig",  # PUT /flags publishes the document (AWS)
        "apigatewaymanagementapi",  # posts to WebSocket connections (@connections)
        "xray",  # the X-Ray SDK under Powertools Tracer (its sampling-rules client)
        "sts", "sso", "sso-oidc",  # credential providers
    }
)  # fmt: skip


def drop_unused_service_models(layer: Path) -> int:
    dropped = 0
    for model in (layer / "botocore" / "data").iterdir():
        if model.is_dir() and model.name not in SERVICES:
            shutil.rmtree(model)
            dropped += 1
    return dropped


def strip_extensions(layer: Path) -> int:
    strip = shutil.which("strip")
    if strip is None:
        return 0
    extensions = [str(path) for path in layer.rglob("*.so")]
    if extensions:
        subprocess.run([strip, "--strip-unneeded", *extensions], check=True)  # noqa: S603
    return len(extensions)


def main(layer: Path) -> None:
    shutil.rmtree(layer / "bin", ignore_errors=True)
    dropped = drop_unused_service_models(layer)
    stripped = strip_extensions(layer)
    print(f"slim_layer: dropped {dropped} unused botocore service models, stripped {stripped} extensions")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
