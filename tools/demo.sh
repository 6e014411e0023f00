#!/usr/bin/env bash
# Watch the races happen: start a local DynamoDB-compatible server (moto) and the demo
# service, probe a racy endpoint and its correct twin, and stop both.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cargo build --release -q -p racecheck
cargo build -q -p demo-service
racecheck="$root/target/release/racecheck"

endpoint="$(bash tools/dynamodb-local start)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
AWS_ENDPOINT_URL_DYNAMODB="$endpoint" PORT="$port" RACE_WINDOW_MS="${RACE_WINDOW_MS:-25}" \
    "$root/target/debug/demo-service" >"$root/target/dynamodb-local/demo.log" 2>&1 &
demo_pid=$!
cleanup() {
    kill "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
    bash "$root/tools/dynamodb-local" stop
}
trap cleanup EXIT
url="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
    curl -sf "$url/health" >/dev/null 2>&1 && break
    if ! kill -0 "$demo_pid" 2>/dev/null; then
        echo "the demo service did not start:" >&2
        cat "$root/target/dynamodb-local/demo.log" >&2
        exit 1
    fi
    sleep 0.2
done

run=$(date +%s)
echo "== the racy counter (read, add in Rust, write back): POST $url/counters/c$run/incr"
"$racecheck" probe --url "$url/counters/c$run/incr" --body '{"by": 1}' \
    --observe "$url/counters/c$run" --pointer /value --concurrency 20 --rounds 3 || true
echo
echo "== the same counter with an atomic ADD: POST $url/counters/a$run/incr-atomic"
"$racecheck" probe --url "$url/counters/a$run/incr-atomic" --body '{"by": 1}' \
    --observe "$url/counters/a$run" --pointer /value --concurrency 20 --rounds 3 || true
echo
echo "== a one-time coupon redeemed by a burst: POST $url/coupons/k$run/redeem"
"$racecheck" probe --url "$url/coupons/k$run/redeem" --reset "PUT $url/coupons/k$run" \
    --observe "$url/coupons/k$run" --pointer /redemptions --mode limit-overrun --concurrency 10 --rounds 2 || true
echo
echo "== the same coupon with a conditional update: POST $url/coupons/j$run/redeem-atomic"
"$racecheck" probe --url "$url/coupons/j$run/redeem-atomic" --reset "PUT $url/coupons/j$run" \
    --observe "$url/coupons/j$run" --pointer /redemptions --mode limit-overrun --concurrency 10 --rounds 2 || true
