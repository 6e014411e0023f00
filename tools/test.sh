#!/usr/bin/env bash
# The whole test suite, as CI runs it (`.ci/run` calls this): formatting, lints, the Python
# MCP client the integration tests use, then every test of the workspace (which also compiles
# the demo service and every fix snippet in tools/fix-check).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== Python MCP client (tools/py-env)"
bash tools/py-env >/dev/null
echo "== cargo test"
cargo test --workspace --locked
