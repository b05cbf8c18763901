#!/usr/bin/env bash
# Brings up deploy/docker-compose.yml (PostgreSQL, one bot process, two workers) against the
# local emulators of Telegram and KIE, and checks that it works: the bot answers /healthz,
# both workers are alive in `admin queue`, and `admin check` finds every invariant holding.
# Then tears it all down (volumes included). Needs Docker with the compose plugin; the image
# build takes a while the first time.
#   bash deploy/check-compose.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! docker compose version >/dev/null 2>&1; then
  echo "docker compose is not available here: nothing checked" >&2
  exit 2
fi

env_file=$(mktemp)
project=neurocards-check
compose=(docker compose -p "$project" -f deploy/docker-compose.yml -f deploy/compose.check.yml)
cleanup() {
  NEUROCARDS_ENV_FILE="$env_file" "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  rm -f "$env_file"
}
trap cleanup EXIT

cat >"$env_file" <<'ENV'
BOT_TOKEN=123456:CHECK-TOKEN
KIE_API_KEY=check-kie-key
TELEGRAM_API_URL=http://127.0.0.1:18081
KIE_API_URL=http://127.0.0.1:18082
KIE_UPLOAD_URL=http://127.0.0.1:18082
ADMIN_IDS=1
LOG_FORMAT=json
ENV
export NEUROCARDS_ENV_FILE="$env_file"

echo "==> building and starting"
"${compose[@]}" up -d --build

echo "==> waiting for the bot's /healthz"
for _ in $(seq 1 90); do
  if curl -fsS http://127.0.0.1:18080/healthz >/dev/null 2>&1; then
    break
  fi
  sleep 2
done
curl -fsS http://127.0.0.1:18080/healthz >/dev/null || {
  "${compose[@]}" logs --tail 50
  echo "the bot never answered /healthz" >&2
  exit 1
}

echo "==> waiting for both workers"
for _ in $(seq 1 30); do
  alive=$("${compose[@]}" exec -T bot neurocards admin queue | grep -c ' alive' || true)
  [ "$alive" -ge 2 ] && break
  sleep 2
done
"${compose[@]}" exec -T bot neurocards admin queue
[ "$alive" -ge 2 ] || { echo "expected 2 live workers, saw $alive" >&2; exit 1; }

echo "==> metrics and invariants"
# The database figures of /metrics are refreshed every 15 s.
for _ in $(seq 1 20); do
  curl -fsS http://127.0.0.1:18080/metrics | grep -q '^neurocards_live_workers 2' && break
  sleep 2
done
curl -fsS http://127.0.0.1:18080/metrics | grep -q '^neurocards_live_workers 2' || {
  echo "/metrics does not show 2 live workers" >&2
  exit 1
}
"${compose[@]}" exec -T bot neurocards admin check

echo "==> the compose deployment works"
