#!/usr/bin/env bash
# On the GPU machine: train zoo architectures one after the other inside one device call.
#
# The device tool's `run`, with carry [".devicepack"] (see scripts/device_train.py pack), timeout_s 600:
#
#     bash scripts/device_zoo.sh                                   # vgg16_bn, then custom_cnn
#     ARCHS=resnet50v2 EPOCHS=300 bash scripts/device_zoo.sh       # the next call
#
# Run from the repository root (the pack is .devicepack/ there, the runs go to runs/). Each run writes $OUT/<name>/ (report.json, float16 weight shards, train.log): fetch, then here
# `python scripts/device_train.py reassemble FILES_AT/<name> --name <name>`. The runs share one deadline
# (BUDGET seconds after the script starts); a run the deadline cuts short keeps its checkpoint on the
# device, and the same call with RESUME=1 continues it while the machine is held.
#
# A call returns at most 8 files of 16 MiB: resnet50v2's float16 weights are 4 shards and vgg16_bn's 2,
# so resnet50v2 goes alone (4 shards + report + log) and vgg16_bn with custom_cnn (7 files).
#
# Environment (defaults in brackets):
#   ARCHS    architectures, in order                        [vgg16_bn custom_cnn]
#   EPOCHS   epochs, one for all or one per architecture     [300 250]
#   BUDGET   seconds for the whole call, start-up included   [540]
#   RESUME   1: continue the runs in runs/ on this machine   []
#   OPTIONS  further `device_train.py train` options, for every run
#            [--batch-size 256 --lr 1e-3 --warmup-epochs 3 --label-smoothing 0 --erasing 0.25]
#   PYTHON   the interpreter                                 [python3]
set -euo pipefail
here=$(dirname "$0")
STARTED=$(date +%s)
read -r -a archs <<< "${ARCHS-vgg16_bn custom_cnn}"
read -r -a epochs <<< "${EPOCHS:-300 250}"
read -r -a options <<< "${OPTIONS:---batch-size 256 --lr 1e-3 --warmup-epochs 3 --label-smoothing 0 --erasing 0.25}"
budget=${BUDGET:-540}
python=${PYTHON:-python3}
out=${OUT:-device_out}

fail() { echo "error: $*" >&2; exit 2; }
[ ${#archs[@]} -gt 0 ] || fail "ARCHS is empty: name the architectures to train"
[ "$(printf '%s\n' "${archs[@]}" | sort | uniq -d)" = "" ] || fail "ARCHS names an architecture twice"
if [ ${#epochs[@]} -eq 1 ]; then
    for ((i = 1; i < ${#archs[@]}; i++)); do epochs+=("${epochs[0]}"); done
fi
[ ${#epochs[@]} -eq ${#archs[@]} ] || fail "EPOCHS has ${#epochs[@]} values for ${#archs[@]} architectures"

if compgen -G ".devicepack/wheels/*.whl" > /dev/null; then  # the device lacks this Keras
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .devicepack/wheels/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-runs/.jax-cache}

for i in "${!archs[@]}"; do
    arch=${archs[$i]}
    left=$((budget - ($(date +%s) - STARTED)))
    if [ "$left" -lt 30 ]; then
        echo "$arch: not started, ${left} s of the ${budget} s budget left" | tee -a "$out/skipped.txt"
        continue
    fi
    mkdir -p "$out/$arch"
    "$python" "$here/device_train.py" train --arch "$arch" --epochs "${epochs[$i]}" --time-budget "$left" \
        --out "$out/$arch" "${options[@]}" ${RESUME:+--resume} 2>&1 | tee "$out/$arch/train.log"
done
