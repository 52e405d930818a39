#!/usr/bin/env bash
# The Debian/Ubuntu packages Orderflow needs from the system, in one place: `make run`,
# `make test` (so .ci/run) call this script. Installed already: it does nothing (no
# apt-get update). Something missing: as root it installs it; otherwise it prints the one
# command to run and exits 1.
#
#   deployments/system-packages.sh run     what `make run` needs
#   deployments/system-packages.sh test    what `make test` needs
#   deployments/system-packages.sh bench   what `make bench` needs (wrk, the load generator)
set -euo pipefail

# nginx: the gateway. python3-venv: `make` builds the virtual environment with it.
# The Prometheus exporters `orderflow run` starts next to the stack (monitoring/prometheus.yml
# scrapes them; RabbitMQ's is its own rabbitmq_prometheus plugin, local-servers.sh enables it).
exporters=(prometheus-postgres-exporter prometheus-redis-exporter prometheus-nginx-exporter)
run_packages=(nginx python3-venv "${exporters[@]}")
# xvfb, dbus, dunst, imagemagick: the desktop notification tests (a virtual screen, a
# private session bus, a real notification server, screenshots); systemd (systemd-analyze)
# and desktop-file-utils: the checks of the agent's unit and autostart files; docker-compose:
# `docker-compose config` of compose.yaml (no Docker engine is needed for it); chromium: the
# browser tests of the web clients (tests/e2e/web, Playwright drives /usr/bin/chromium);
# prometheus: promtool's checks of monitoring/ and the real Prometheus of the e2e test.
test_packages=("${run_packages[@]}" xvfb dbus dunst imagemagick systemd desktop-file-utils docker-compose chromium
               prometheus)

case "${1:-}" in
  run) wanted=("${run_packages[@]}") ;;
  test) wanted=("${test_packages[@]}") ;;
  bench) wanted=("${run_packages[@]}" wrk) ;;
  *) echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null; then
  echo "orderflow: not a Debian/Ubuntu system; install these (or your system's equivalents) by hand: ${wanted[*]}" >&2
  exit 0
fi

missing=()
for package in "${wanted[@]}"; do
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null)" == installed ]] || missing+=("$package")
done
((${#missing[@]})) || exit 0

if ((EUID != 0)); then
  echo "orderflow: missing system packages: ${missing[*]}. Install them with:" >&2
  echo "  sudo $0 $1" >&2
  exit 1
fi

echo "orderflow: installing ${missing[*]} ..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian's nginx package starts a system nginx on port 80; Orderflow starts its own.
if [[ " ${missing[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null \
    && systemctl is-active --quiet nginx 2>/dev/null; then
  systemctl stop nginx || true
fi
# Likewise Debian's prometheus starts a system Prometheus on 9090, and each exporter package a
# system exporter on its default port; the tests and `orderflow run` start their own.
for service in prometheus "${exporters[@]}"; do
  if [[ " ${missing[*]} " == *" $service "* ]] && command -v systemctl >/dev/null \
      && systemctl is-active --quiet "$service" 2>/dev/null; then
    systemctl stop "$service" || true
  fi
done
