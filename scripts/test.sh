#!/usr/bin/env bash
# The project's test command (`npm test`): system packages, typecheck, then vitest.
# Extra arguments go to vitest, e.g. `npm test -- test/unit`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-system.sh

echo "== typecheck"
npm run --silent typecheck

echo "== vitest"
npx vitest run "$@"
