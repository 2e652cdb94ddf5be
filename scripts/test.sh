#!/usr/bin/env bash
# Builds sluice (installing missing packages first) and runs every test:
# unit, integration (in-process cluster) and process (real processes on
# loopback) suites, through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
ctest --test-dir build --output-on-failure -j 2 --timeout 300
