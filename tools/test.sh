#!/usr/bin/env bash
# The whole test suite, as CI runs it (`.ci/run` calls this): formatting, lints, the Python
# MCP client and the local DynamoDB (moto) the integration tests use, then every test of the
# workspace (which also compiles the demo service and every fix snippet in tools/fix-check).
# The end-to-end test starts moto and the demo service itself and stops them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== Python MCP client (tools/py-env) and moto, the local DynamoDB (tools/dynamodb-local)"
bash tools/py-env >/dev/null
bash tools/dynamodb-local install
echo "== the demo service binary (the end-to-end test starts it)"
cargo build --locked -p demo-service
echo "== MCP Inspector --strict on the tool schemas (tools/mcp-inspector-check)"
cargo build --locked -p racecheck
bash tools/mcp-inspector-check
echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$log"
