#!/usr/bin/env bash
# The rate-distortion benchmarks of docs/RESULTS.md: every pretrained model on its full test file.
# Each codec's measurements are cached under results/bench_cache/, so an interrupted run resumes.
#   scripts/bench_all.sh            # all four domains
#   scripts/bench_all.sh flowers64  # one
source "$(dirname "$0")/env.sh"
cd "$ROOT"
declare -A DATA=([airplanes32]=cifar10_airplane_test.npz [automobiles32]=cifar10_automobile_test.npz
                 [flowers32]=flowers_32_test.npz [flowers64]=flowers_64_test.npz)
for model in "${@:-airplanes32 automobiles32 flowers32 flowers64}"; do
  for m in $model; do
    invcomp bench "${DATA[$m]}" --model "$m" --device cpu
  done
done
