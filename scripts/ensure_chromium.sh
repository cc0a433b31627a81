#!/usr/bin/env bash
# Debian's Chromium, which the browser tests drive through Playwright (/usr/bin/chromium).
# Installed when missing and this user may install packages (root, or sudo without a password).
# Otherwise the browser tests are skipped, and this says so; with --required it fails instead.
set -uo pipefail
[ -x /usr/bin/chromium ] && exit 0

required=${1:-}
give_up() {
  if [ "$required" = "--required" ]; then
    echo "$1, and the browser tests must run here" >&2
    exit 1
  fi
  echo "$1: the browser tests will be skipped (install it with: sudo apt-get install chromium)" >&2
  exit 0
}

if [ "$(id -u)" = 0 ]; then
  as_root=()
elif sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  give_up "Debian's Chromium is not installed and this user cannot install packages"
fi
echo "installing Debian's Chromium for the browser tests"
{ "${as_root[@]}" apt-get update -qq &&
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq chromium; } >/dev/null ||
  give_up "Debian's Chromium could not be installed"
