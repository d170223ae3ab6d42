#!/bin/sh
# The language runtime's floor in the test VM, beside keepalived's own start (not a test).
# From the checkout: .venv/bin/python -m tests.kernel.vm run -- /bin/sh bench/vm_floor.sh
# Each command twice, wall time from exec to exit; bench/RESULTS.md ("Cold start") cites it.
set -u
cd "$(dirname "$0")/.." || exit 1
cf=$(mktemp /tmp/floor-XXXXXX.cf)
.venv/bin/python -c 'import sys; sys.path.insert(0, "bench"); from _daemons import healthd_config
print(healthd_config(500, 80, "/dev/null"))' > "$cf"
t() {
  s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
  echo "$(( (e - s) / 1000000 )) ms: $*"
}
for round in 1 2; do
  echo "round $round"
  t .venv/bin/python -c pass
  t .venv/bin/python -c "import asyncio"
  t .venv/bin/python -c "import asyncio, uvloop, structlog"
  t .venv/bin/healthd configtest -c "$cf"
  t keepalived --version
done
