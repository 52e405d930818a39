#!/usr/bin/env bash
# Start the local PostgreSQL, Redis and RabbitMQ that are installed but stopped (all three,
# or the ones named), on their standard ports. `make test` (so .ci/run) and `orderflow run`
# (for a server its settings point at on this machine) call it. Needs root to start a
# server; without it, it prints the one command to run and exits 1. A local RabbitMQ also gets
# its Prometheus plugin (rabbitmq_prometheus, metrics on 127.0.0.1:15692, which
# monitoring/prometheus.yml scrapes) enabled once; RabbitMQ keeps it enabled across restarts.
#
#   deployments/local-servers.sh [postgresql] [redis] [rabbitmq]
set -euo pipefail

answers() {
  case "$1" in
    postgresql) pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null ;;
    redis) [[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" == PONG ]] ;;
    rabbitmq) (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null ;;  # rabbitmqctl needs root
  esac
}

installed() {
  case "$1" in
    postgresql) command -v pg_ctlcluster >/dev/null && compgen -G "/etc/postgresql/*/main" >/dev/null ;;
    redis) command -v redis-server >/dev/null ;;
    rabbitmq) command -v rabbitmq-server >/dev/null ;;
  esac
}

start() {
  case "$1" in
    postgresql)
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start ;;
    redis)
      mkdir -p /var/lib/redis /var/log/redis
      redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/orderflow.log ;;
    rabbitmq)
      rabbitmqctl -q start_app >/dev/null 2>&1 || rabbitmq-server -detached
      rabbitmqctl -q await_startup --timeout 120 ;;
  esac
}

# RabbitMQ's metrics: nothing to do when they answer, or when the broker is not this machine's.
rabbitmq_metrics() {
  (exec 3<>/dev/tcp/127.0.0.1/15692) 2>/dev/null && return 0
  installed rabbitmq && command -v rabbitmq-plugins >/dev/null || return 0
  if ((EUID != 0)); then
    echo "orderflow: RabbitMQ's Prometheus plugin is off. Enable it with:" >&2
    echo "  sudo rabbitmq-plugins enable rabbitmq_prometheus" >&2
    return 1
  fi
  echo "orderflow: enabling RabbitMQ's Prometheus plugin (rabbitmq_prometheus) ..."
  rabbitmq-plugins -q enable rabbitmq_prometheus >/dev/null
}

declare -A package=([postgresql]=postgresql [redis]=redis-server [rabbitmq]=rabbitmq-server)
servers=("$@")
((${#servers[@]})) || servers=(postgresql redis rabbitmq)
down=()
for server in "${servers[@]}"; do
  [[ -v "package[$server]" ]] || { echo "usage: $0 [postgresql] [redis] [rabbitmq]" >&2; exit 2; }
  answers "$server" || down+=("$server")
done

for server in "${down[@]}"; do
  if ! installed "$server"; then
    echo "orderflow: $server is not installed (Debian: apt-get install ${package[$server]})," \
      "or point the settings at a running server." >&2
    exit 1
  fi
done
if ((${#down[@]})) && ((EUID != 0)); then
  echo "orderflow: ${down[*]} installed but not running. Start them with:" >&2
  echo "  sudo $0 ${down[*]}" >&2
  exit 1
fi
for server in "${down[@]}"; do
  echo "orderflow: starting $server ..."
  start "$server"
  for _ in $(seq 120); do answers "$server" && continue 2; sleep 0.5; done  # redis-server returns at once
  echo "orderflow: $server did not answer within 60 s after starting it." >&2
  exit 1
done
if [[ " ${servers[*]} " == *" rabbitmq "* ]]; then
  rabbitmq_metrics
fi
