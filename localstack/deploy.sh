#!/usr/bin/env bash
# Deploy template.yaml to a running LocalStack (make localstack-up first). Needs Docker and the SAM CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if ! command -v sam >/dev/null; then
  echo "the SAM CLI is required: pip install aws-sam-cli" >&2
  exit 1
fi
if ! curl -fsS http://localhost:4566/_localstack/health >/dev/null; then
  echo "LocalStack is not answering on localhost:4566: run 'make localstack-up' (needs Docker)" >&2
  exit 1
fi
exec "$PY" -m lighthouse_tools.deploy localstack "$@"
