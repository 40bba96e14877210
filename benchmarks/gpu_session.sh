#!/usr/bin/env bash
# The GPU measurements of issues 5 and 7, in parts that each fit one 10-minute device call.
#
#   bash benchmarks/gpu_session.sh PART [OUT_DIR]
#
# PART:
#   bench      lpgx bench --suite full (time budget 8 min), JSON and the scaling PNG
#   reference  the reference LPG meta-step (512 agents, 16 mini-batches, GRU 256, 64 × 20, K 5)
#              for 8 and 16 mini-batches, float32 and bfloat16 GRU (the tuning knobs)
#   ta-lpg     the first chunk of `lpgx train --preset ta-lpg` (one ES generation of 1024
#              candidates), with its wall time and peak device memory
#
# OUT_DIR defaults to $OUT (the device tool's folder that comes back) or ./gpu-out. On a machine
# that cannot reach a package registry, first run ../shared/tools/gpu-wheels here and carry
# `.whl`; this script installs from it when present. Every result also records the device,
# the versions and the exact command.
set -euo pipefail
part="${1:?usage: bash benchmarks/gpu_session.sh bench|reference|ta-lpg [OUT_DIR]}"
out="${2:-${OUT:-gpu-out}}"
mkdir -p "$out"
cd "$(dirname "$0")/.."

if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target .site .whl/*.whl
  export PYTHONPATH="$PWD/.site:$PWD"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1 || true
python3 -c "import jax; print(jax.devices())" | tee -a "$out/gpu.txt"

case "$part" in
  bench)
    python3 -m lpgx_cli.main bench --suite full --time-budget 480 --json \
      --png "$out/bench_full.png" > "$out/bench_full.json" 2> "$out/bench_full.log" || true
    tail -n 60 "$out/bench_full.log"
    ;;
  reference)
    for mb in 16 8; do
      for dtype in float32 bfloat16; do
        echo "== reference meta-step: 512 agents, $mb mini-batches, GRU $dtype"
        python3 -m benchmarks.meta_step --num-agents 512 --num-mini-batches "$mb" \
          --lpg-dtype "$dtype" --repeats 5 --json \
          > "$out/reference_mb${mb}_${dtype}.json" 2> "$out/reference_mb${mb}_${dtype}.log" \
          || tail -n 20 "$out/reference_mb${mb}_${dtype}.log"
        tail -n 8 "$out/reference_mb${mb}_${dtype}.log"
      done
    done
    ;;
  ta-lpg)
    start=$(date +%s)
    # TA_LPG_PRESET=ta-lpg-cpu runs the same steps at CPU size (a smoke test of this part).
    python3 -m lpgx_cli.main train --preset "${TA_LPG_PRESET:-ta-lpg}" --train-steps 1 --chunk-size 1 \
      --no-evaluate --out "$out/ta-lpg" 2>&1 | tail -n 20 | tee "$out/ta-lpg.log"
    echo "wall (start, compile and one generation): $(( $(date +%s) - start )) s" \
      | tee -a "$out/ta-lpg.log"
    cp "$out/ta-lpg/metrics.jsonl" "$out/ta-lpg-metrics.jsonl" 2>/dev/null || true
    rm -rf "$out/ta-lpg"  # checkpoints are large and not needed here
    ;;
  *)
    echo "unknown part $part: bench, reference or ta-lpg" >&2
    exit 2
    ;;
esac
