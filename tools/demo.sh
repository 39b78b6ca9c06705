#!/bin/sh
# demo.sh BUILD_DIR - the main job of libgem on a machine without GPUs (`make demo`).
#
# Emulates a node of 4 GPUs whose speeds differ by up to 7.7% (as measured on real L40s),
# writes a synthetic routing trace of a skewed MoE model, and compares the placement
# policies: the engines' default (contiguous), round robin, load balancing, speed-aware
# balancing, DeepSeek's EPLB and GEM. Every command is printed before it runs, so that the
# output doubles as a tour of the gem tool. Files go to BUILD_DIR/demo.
set -eu

BUILD=${1:-build}
GEM=$BUILD/gem
DIR=$BUILD/demo
if [ ! -x "$GEM" ]; then
    echo "demo.sh: $GEM not found; run 'make' first" >&2
    exit 1
fi
mkdir -p "$DIR"

# run ARGS...: prints "$ gem ARGS" and runs it.
run() {
    echo
    echo "\$ gem $*"
    "$GEM" "$@"
}

echo "libgem demo: expert placement on GPUs of unequal speed (files in $DIR)"
run version

# 1. The GPUs: an emulated 4-GPU node (no hardware needed); on a GPU machine
#    'gem profile --backend cuda' measures the real curves instead.
run profile --backend sim -o "$DIR/profile.json"

# 2. The routing: 64 steps of an 8-layer, 32-expert model; 16384 expert assignments per layer
#    and step (prefill chunks of 8192 tokens, top-2), skewed: popular experts, and bursts of
#    temporal ones. (With a few tokens per expert, as in decoding, every expert costs one
#    weight read whatever it gets, and placements differ much less.)
run synth --steps 64 --layers 8 --experts 32 --tokens 16384 --skew 0.6 --seed 1 \
    -o "$DIR/trace.csv"

# 3. What GEM sees in it: consistent, temporal and cold experts.
run classify --trace "$DIR/trace.csv" --top 2

# 4. The main result: every policy on the same GPUs and trace.
run compare --profile "$DIR/profile.json" --trace "$DIR/trace.csv"

# 5. Using one: map with GEM, check it, and export it for SGLang.
run map --policy gem --profile "$DIR/profile.json" --trace "$DIR/trace.csv" \
    -o "$DIR/mapping.json"
run eval --profile "$DIR/profile.json" --trace "$DIR/trace.csv" --mapping "$DIR/mapping.json"
run export --format sglang --mapping "$DIR/mapping.json" -o "$DIR/expert-location.json"

echo
echo "demo: done. Files: $DIR/{profile.json,trace.csv,mapping.json,expert-location.json}"
