#!/usr/bin/env bash
# Headless locust against the embedded default: `gateway serve` on a free port, a steady
# (or $LOAD_SHAPE) run, locust's CSV + HTML and the summary JSON under load_tests/results/,
# then the gateway is stopped. Run it alone on the machine (it owns a local Ray).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PORT=${PORT:-8020}
OUT=load_tests/results
export LOAD_SHAPE=${LOAD_SHAPE:-steady} LOCUST_USERS=${LOCUST_USERS:-4} LOCUST_DURATION_S=${LOCUST_DURATION_S:-300}
export LOCUST_SUMMARY=${LOCUST_SUMMARY:-$OUT/locust_summary.json} HF_HUB_OFFLINE=1
"$VENV/bin/gateway" serve --port "$PORT" > /tmp/gateway-locust.log 2>&1 &
GATEWAY=$!
trap 'kill -TERM $GATEWAY 2>/dev/null; wait $GATEWAY 2>/dev/null || true' EXIT
for _ in $(seq 1 450); do
  curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break
  kill -0 $GATEWAY 2>/dev/null || { echo "gateway exited; see /tmp/gateway-locust.log" >&2; exit 1; }
  sleep 2
done
"$VENV/bin/locust" -f load_tests/locustfile.py --headless --host "http://127.0.0.1:$PORT" \
  --csv "$OUT/locust" --html "$OUT/locust.html" --only-summary
echo "summary: $LOCUST_SUMMARY"
cat "$LOCUST_SUMMARY"
