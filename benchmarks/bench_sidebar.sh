#!/usr/bin/env bash
# How long the JupyterLab sidebar takes to render 1,000 models, measured in headless Chromium
# (ui-tests/benchmarks/sidebar-render.bench.ts, a Galata spec with a mocked model list).
# Prints the medians and the 300 ms floor; like the other benchmarks, always exits 0 once run.
#
# Needs what the UI tests need: the extension built and installed (`jlpm build`, a development
# install), `cd ui-tests && npm ci`, /usr/bin/chromium, and port 8888 free.
set -euo pipefail
cd "$(dirname "$0")/../ui-tests"
output=$(mktemp /tmp/modelhub-bench-sidebar.XXXXXX.json)
trap 'rm -f "$output"' EXIT
MODELHUB_BENCH_OUTPUT="$output" npx playwright test --config playwright-bench.config.js \
  >/tmp/modelhub-bench-sidebar.log 2>&1 || {
  echo "The benchmark failed; see /tmp/modelhub-bench-sidebar.log" >&2
  tail -30 /tmp/modelhub-bench-sidebar.log >&2
  exit 1
}
python3 - "$output" <<'PY'
import json, sys

r = json.load(open(sys.argv[1]))
floor = r["floor_ms"]
render, refresh = r["render_ms"], r["refresh_ms"]
verdict = "PASS" if render["median"] < floor else "FAIL"
print(f"sidebar, {r['models']:,} models, medians of {r['repeats']} in headless Chromium:")
print(f"  render  {render['median']:7.1f} ms (max {render['max']:.1f})  floor {floor} ms  {verdict}")
print(f"  refresh {refresh['median']:7.1f} ms (max {refresh['max']:.1f})  (in-page fetch answered from memory + parse + render)")
PY
