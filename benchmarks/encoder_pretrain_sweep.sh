#!/usr/bin/env bash
# V-JEPA pretraining of the demo's X-encoder (4 frames, 32 px, patch 8, tubelet 2: a 2 x 4 x 4 token grid)
# on distinct clips rendered from a world seeded apart from the evaluation world, one variant per mask
# geometry, each scored by frozen probes of form and motion against the seeded random encoder it starts from.
# Usage: bash benchmarks/encoder_pretrain_sweep.sh WORLD_DIR OUT_DIR [VARIANT ...]
#   VARIANT: random (the demo's seeded random encoder), random_p4 (its patch-4 twin, after temporal_p4), or one below
#   PROBE_SEEDS=N fits each probe N times (default 3); PROBE_TASKS="shape colour ..." (default: shape colour
#   binding direction; count and action too cost about a minute more per probe and seed).
# Then: python benchmarks/encoder_probe_table.py collect OUT_DIR benchmarks/results/encoder_probes.json
#   and python benchmarks/render_docs.py (BENCHMARKS.md's probe table)
#   WORLD_DIR: `vljepa world --out WORLD_DIR num_test=1000 num_streams=0` (1,000 test clips: a tighter probe)
set -euo pipefail
world=${1:-runs/world}; out=${2:-runs/encoder-sweep}; shift 2 || true
config=src/vljepa/configs/encoder-pretrain-world.yaml
common="data=[] world_clips=40000 x_encoder.num_frames=4 steps=800 batch_size=128 log_every=20 save_every=200"
temporal="masks.0.temporal_scale=[0.5,0.5] masks.1.temporal_scale=[0.5,0.5] masks.1.spatial_scale=[0.5,0.5]"
declare -A variants=(
  # 4 blocks of 15% and one of 50% of the 4 x 4 grid, each hidden in one of the two time steps only (V-JEPA's
  # blocks span the whole clip): what is hidden is seen at the other step, so it can be predicted
  [temporal]="$temporal"
  # the same at the world's own 64 px in 16-px patches: the same token grid, four times the pixels per token
  [temporal_64p16]="$temporal x_encoder.image_size=64 x_encoder.patch_size=16"
  # the same in 4-px patches: an 8 x 8 grid (128 tokens, a lossless patch embedding); about 10x the cost per clip,
  # so fewer clips (300 steps x 64 from 20,000)
  [temporal_p4]="$temporal x_encoder.patch_size=4 world_clips=20000 steps=300 warmup_steps=40 batch_size=64"
  # the same with each target token's loss weighted by its tubelet's pixel spread (90%): the flat background's
  # tokens, most of the grid, weigh a tenth as much as the shapes'
  [temporal_p4_content]="$temporal x_encoder.patch_size=4 world_clips=20000 steps=300 warmup_steps=40 batch_size=64 content_weighting=0.9"
  # the same with a target encoder that follows faster (EMA 0.99 rising to 0.999, from 0.996 to 1.0): in 300
  # steps the slow target stays close to its random start, so there is little for the context to bootstrap from
  [temporal_p4_content_fastema]="$temporal x_encoder.patch_size=4 world_clips=20000 steps=300 warmup_steps=40 batch_size=64 content_weighting=0.9 ema=[0.99,0.999]"
  # temporal_p4_content trained three times as long on twice the distinct clips (900 steps x 64 from 40,000): is
  # form lost to too little training, or to the objective?
  [temporal_p4_content_long]="$temporal x_encoder.patch_size=4 world_clips=40000 steps=900 warmup_steps=120 batch_size=64 content_weighting=0.9"
)
names=("$@"); [ ${#names[@]} -gt 0 ] || names=(random $(printf '%s\n' "${!variants[@]}" | sort))
tasks=$(printf -- '--task %s ' ${PROBE_TASKS:-shape colour binding direction})
probe="vljepa probe --seeds ${PROBE_SEEDS:-3} $tasks --train-manifest $world/train.jsonl --test-manifest $world/test.jsonl --frames 4 --cache-dir $out/feature_cache"
for name in "${names[@]}"; do
  mkdir -p "$out/$name"
  if [ "$name" = random ]; then
    $probe --out "$out/random/probe.json"
  elif [ "$name" = random_p4 ]; then  # the seeded random start of the patch-4 variants: run after temporal_p4
    $probe --encoder "$out/temporal_p4/encoder" --compare-random --out "$out/random_p4/probe.json"
  else
    # shellcheck disable=SC2086
    vljepa pretrain-encoder -c "$config" $common "out_dir=$out/$name" ${variants[$name]}
    $probe --encoder "$out/$name/encoder" --out "$out/$name/probe.json"
  fi
done
