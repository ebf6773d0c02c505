#!/usr/bin/env bash
# V-JEPA pretraining of the tiny X-encoder, short variants, each scored by frozen probes (action and
# direction; attentive and linear) against the seeded random encoder it starts from.
# Usage: bash benchmarks/encoder_pretrain_sweep.sh WORLD_DIR OUT_DIR  (WORLD_DIR from `vljepa world` or the demo)
set -euo pipefail
world=${1:-runs/demo/world}; out=${2:-runs/encoder-sweep}
config=src/vljepa/configs/encoder-pretrain-world.yaml
# The config's masks are 4 x 15% + 1 x 40%; steps600 and the slow-EMA row use V-JEPA's 8 x 15% + 2 x 70%
# (on this encoder's 4 x 4 x 4 grid, V-JEPA's masks leave 4-16 of the 64 tokens as context, the config's 12-40).
paper_masks="masks.0.num_blocks=8 masks.1.num_blocks=2 masks.1.spatial_scale=[0.7,0.7]"
declare -A variants=(
  [steps600]="steps=600 $paper_masks"
  [steps600_slow_ema_lr1e-4]="steps=600 lr=0.0001 ema=[0.9995,1.0] $paper_masks"
  [small300]="steps=300"
  [small600]="steps=600"
  [small1500]="steps=1500"
)
for name in $(printf '%s\n' "${!variants[@]}" | sort); do
  # shellcheck disable=SC2086
  vljepa pretrain-encoder -c "$config" "data=[$world/train.jsonl]" "out_dir=$out/$name" ${variants[$name]}
  vljepa probe --train-manifest "$world/train.jsonl" --test-manifest "$world/test.jsonl" \
    --encoder "$out/$name/encoder" --cache-dir "$out/feature_cache" --out "$out/$name/probe.json"
done
