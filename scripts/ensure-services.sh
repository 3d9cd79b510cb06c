#!/usr/bin/env bash
# Start PostgreSQL and Redis on 127.0.0.1 if they are installed here but not answering.
# Exits non-zero, naming the service, if one cannot be reached afterwards.
set -uo pipefail
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c5 <&3 | grep -q PONG) 2>/dev/null; }

if ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "==> starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 30); do pg_up && break; sleep 1; done
fi
if ! redis_up && command -v redis-server >/dev/null 2>&1; then
  echo "==> starting Redis"
  mkdir -p /tmp/redis-ci
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/redis-ci --logfile /tmp/redis-ci/redis.log || true
  for _ in $(seq 30); do redis_up && break; sleep 1; done
fi
ok=0
pg_up || { echo "PostgreSQL is not reachable at 127.0.0.1:5432" >&2; ok=1; }
redis_up || { echo "Redis is not reachable at 127.0.0.1:6379" >&2; ok=1; }
exit $ok
