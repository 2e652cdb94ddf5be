#!/usr/bin/env bash
# Builds sluice (installing missing packages first) and runs the word count
# job on its embedded default: local mode with two in-process workers over
# the built-in text generator, for 5 seconds. Then shows the output layout
# and the most frequent words over all batches.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
out=build/demo-output
rm -rf "$out"
./build/wordcount --local=2 --source=gen://20000 --output="$out" \
  --batch-interval=1s --duration=5
echo
echo "output: $out/<batch time ms>/part-NNNNN, one 'word<TAB>count' line per word of the batch"
ls "$out" | head -3
echo "..."
echo
echo "top words over all batches:"
cat "$out"/*/part-* | awk -F'\t' '{s[$1]+=$2} END {for (w in s) print s[w] "\t" w}' \
  | sort -rn | head -10
