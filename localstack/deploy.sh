#!/usr/bin/env bash
# Deploy template.yaml to a running LocalStack (`make localstack-up`, needs Docker) or MiniStack, with the
# pinned SAM CLI, exactly as to AWS: only the endpoint differs. Writes .lighthouse/local.json and the
# operator's credential, so `lighthouse agents add ...` and the curl examples work against the stack.
#
#   localstack/deploy.sh [ENDPOINT] [HEALTH_URL] [-- lighthouse deploy options]
#   LIGHTHOUSE_AWS_ENDPOINT=http://localhost:4566 localstack/deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
LIGHTHOUSE=${LIGHTHOUSE:-.venv/bin/lighthouse}
ENDPOINT=${1:-${LIGHTHOUSE_AWS_ENDPOINT:-http://localhost:4566}}
HEALTH_URL=${2:-${LIGHTHOUSE_HEALTH_URL:-$ENDPOINT/_localstack/health}}
shift $(( $# > 2 ? 2 : $# ))
[[ "${1:-}" == "--" ]] && shift
exec "$LIGHTHOUSE" deploy --endpoint "$ENDPOINT" --health-url "$HEALTH_URL" "$@"
