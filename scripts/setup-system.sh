#!/usr/bin/env bash
# Installs the system (Debian) packages the test suite needs, only when missing.
# Idempotent: a second run installs nothing and prints "present" for everything.
#
#   redis-server / redis-cli   private Redis instances started by the tests
#   /usr/bin/chromium          headless browser for the login / MFA / consent page tests
#   python3-jwt, -requests, -pyotp, -cryptography
#                              client-side tests written against the API guide
#                              (always run with /usr/bin/python3, Debian's)
#   nginx                      the gateway (auth_request) test in front of /v1/auth/verify
#
# Set NOPESIGHT_SKIP_SYSTEM_SETUP=1 to skip this script entirely.
set -euo pipefail

if [[ "${NOPESIGHT_SKIP_SYSTEM_SETUP:-}" == "1" ]]; then
  echo "setup-system: skipped (NOPESIGHT_SKIP_SYSTEM_SETUP=1)"
  exit 0
fi

PY=/usr/bin/python3

required=()   # apt packages that must be installed
optional=()   # apt packages whose install failure is only a warning
declare -A label=()  # apt package -> the thing it provides, for the report

need() {  # need <apt-package> <what>
  required+=("$1"); label[$1]="$2"
}

# --- what is missing ---------------------------------------------------------
if command -v redis-server >/dev/null 2>&1; then echo "redis-server: present"; else need redis-server redis-server; fi
if command -v redis-cli >/dev/null 2>&1; then echo "redis-cli: present"; else need redis-tools redis-cli; fi
if [[ -x /usr/bin/chromium ]]; then echo "chromium: present"; else need chromium /usr/bin/chromium; fi

if [[ -x "$PY" ]]; then
  echo "python3: present"
  for pair in jwt:python3-jwt requests:python3-requests pyotp:python3-pyotp cryptography:python3-cryptography; do
    mod=${pair%%:*}; pkg=${pair#*:}
    if "$PY" -c "import $mod" >/dev/null 2>&1; then echo "python3 $mod: present"; else need "$pkg" "python3 $mod"; fi
  done
else
  need python3 python3
  for pkg in python3-jwt python3-requests python3-pyotp python3-cryptography; do need "$pkg" "$pkg"; done
fi

if command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]]; then
  echo "nginx: present"
else
  need nginx nginx
fi

if (( ${#required[@]} == 0 && ${#optional[@]} == 0 )); then
  exit 0
fi

# --- install ------------------------------------------------------------------
if [[ $(id -u) -ne 0 ]]; then
  echo "setup-system: not root; missing system packages. Install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${required[*]} ${optional[*]}" >&2
  if (( ${#required[@]} == 0 )); then
    echo "setup-system: only optional packages are missing; continuing" >&2
    exit 0
  fi
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Keep package installs from starting services (nginx would grab port 80):
# invoke-rc.d asks /usr/sbin/policy-rc.d, and exit code 101 means "don't".
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  made_policy=1
fi
cleanup() { if (( made_policy )); then rm -f "$policy"; fi; }
trap cleanup EXIT

apt_opts=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

echo "setup-system: apt-get update"
apt-get update -q >/dev/null

if (( ${#required[@]} > 0 )); then
  echo "setup-system: installing ${required[*]}"
  apt-get install "${apt_opts[@]}" "${required[@]}" >/dev/null
  for pkg in "${required[@]}"; do echo "${label[$pkg]}: installed ($pkg)"; done
  # The tests start their own nginx; don't leave a system one on port 80.
  if [[ " ${required[*]} " == *" nginx "* ]]; then service nginx stop >/dev/null 2>&1 || true; fi
fi

if (( ${#optional[@]} > 0 )); then
  echo "setup-system: installing optional ${optional[*]}"
  if apt-get install "${apt_opts[@]}" "${optional[@]}" >/dev/null; then
    for pkg in "${optional[@]}"; do echo "${label[$pkg]}: installed ($pkg)"; done
    # In case something started it anyway, don't leave a system nginx on port 80.
    if [[ " ${optional[*]} " == *" nginx "* ]]; then
      service nginx stop >/dev/null 2>&1 || true
    fi
  else
    echo "setup-system: WARNING: could not install optional ${optional[*]}; tests needing it will be skipped" >&2
  fi
fi

# Verify what the tests rely on.
command -v redis-server >/dev/null && command -v redis-cli >/dev/null
[[ -x /usr/bin/chromium ]]
[[ -x /usr/sbin/nginx ]]
"$PY" -c 'import jwt, requests, pyotp, cryptography'
echo "setup-system: ok"
