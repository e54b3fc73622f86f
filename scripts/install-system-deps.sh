#!/usr/bin/env bash
# Install the Debian packages the tests need, only when they are missing.
#   chromium: headless browser for the book's browser tests (driven by Playwright).
#   bubblewrap: the sandbox `course grade` runs every submission in.
#   postgresql: a throwaway server for the test of `course grade` with a PostgreSQL gradebook.
#   npm (and nodejs): installs axe-core (package.json), the accessibility checker the browser
#     tests load into every book page.
# Called by `make test`; safe to run again (it does nothing when all are present).
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-system-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "install-system-deps: need root to apt-get install ${missing[*]}; install them and rerun" >&2
  exit 1
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
