#!/bin/sh
# KD end to end on Fashion-MNIST (see docs/results.md, KD section). Run from the repo root after `npm run build`:
#   sh plugins/kd/bench/run.sh [OUT_ROOT]
# 1. a ResNet-20 teacher; 2. a small-cnn (width 4) student without and with kd, same budget, seeds 1 2 3
# (the plain and the kd students run as two parallel streams of single-threaded wasm processes).
set -e
OUT=${1:-runs/kd-fashion}
B=plugins/kd/bench
[ -f "$OUT/teacher/run.json" ] || npx tricks train --config $B/teacher.json --out "$OUT/teacher"
(
  for seed in 1 2 3; do
    [ -f "$OUT/student-s$seed/run.json" ] || npx tricks train --config $B/student.json --seed $seed --out "$OUT/student-s$seed"
  done
) &
for seed in 1 2 3; do
  [ -f "$OUT/student-kd-s$seed/run.json" ] || npx tricks train --config $B/student.json --seed $seed --plugin "kd={\"teacher\":\"$OUT/teacher\"}" --out "$OUT/student-kd-s$seed"
done
wait
node $B/summary.mjs "$OUT"
