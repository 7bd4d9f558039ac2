#!/usr/bin/env bash
# Installs what p0's tests and demo need on a fresh Debian machine with Rust: PostgreSQL 15
# server binaries, the MariaDB server and clients, and Redis for the custom-provisioner example. Idempotent; needs root (or sudo) only when
# something is missing.
set -euo pipefail

need=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v psql >/dev/null || need+=(postgresql-client-15)
{ [ -x /usr/sbin/mariadbd ] || [ -x /usr/sbin/mysqld ]; } || need+=(mariadb-server)
command -v mariadb >/dev/null || need+=(mariadb-client)
# The custom provisioner example (examples/redis_agent.rs) runs against a real Redis.
command -v redis-server >/dev/null || need+=(redis-server)
# The web console is tested in a real browser: headless Chromium over WebDriver.
command -v chromedriver >/dev/null || need+=(chromium chromium-driver)
# The device-grant login test runs node's oidc-provider.
command -v npm >/dev/null || need+=(nodejs npm)

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # Debian's packages start their own server on install; the tests start their own instead.
  echo 'exit 101' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null; $SUDO chmod +x /usr/sbin/policy-rc.d
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  $SUDO rm -f /usr/sbin/policy-rc.d
fi
