#!/usr/bin/env bash
# On the GPU machine: train zoo architectures one after the other inside one device call.
#
# The device tool's `run`, with carry [".devicepack"] (see scripts/device_train.py pack), timeout_s 600:
#
#     bash scripts/device_zoo.sh                                   # vgg16_bn, then custom_cnn
#     ARCHS=resnet50v2 bash scripts/device_zoo.sh                  # the next call
#
# Run from the repository root (the pack is .devicepack/ there). Each run trains in $RUNS/<arch>/ and
# writes $OUT/<arch>/ (report.json, float16 weight shards, train.log): fetch, then here
# `python scripts/device_train.py reassemble FILES_AT/<arch> --name <arch>`. The runs share one deadline
# (BUDGET seconds after the script starts), each run getting its SHARE of what is left when it starts;
# with --fit-epochs (in the default OPTIONS) a run lays its schedule over the epochs that fit in its share,
# so it ends its learning-rate decay inside the call instead of being cut half-way. A run that already has
# a checkpoint in $RUNS/<arch>/ (the deadline cut it short in an earlier call on this machine) is
# continued, not restarted: the same call again finishes what the last one left.
#
# A call returns at most 8 files of 16 MiB: resnet50v2's float16 weights are 4 shards, vgg16_bn's and
# vgg16's 2, custom_cnn's 1, and each run adds report.json and train.log. The script refuses a set of
# architectures over 8 files: resnet50v2 goes alone, vgg16_bn with custom_cnn.
#
# Environment (defaults in brackets):
#   ARCHS    architectures, in order                         [vgg16_bn custom_cnn]
#   EPOCHS   epochs, one for all or one per architecture      [custom_cnn 250, the others 300]
#   BUDGET   seconds for the whole call, start-up included    [540]
#   SHARES   each architecture's share of the budget          [1 each]
#   RUNS     where the runs live on the device                [runs]
#   OPTIONS  further `device_train.py train` options, for every run (not --name, --output or --out)
#            [--batch-size 256 --lr 1e-3 --warmup-epochs 3 --label-smoothing 0 --erasing 0.25 --fit-epochs]
#   PYTHON   the interpreter                                  [python3]
set -euo pipefail
here=$(dirname "$0")
STARTED=$(date +%s)
read -r -a archs <<< "${ARCHS-vgg16_bn custom_cnn}"
read -r -a epochs <<< "${EPOCHS-}"
read -r -a shares <<< "${SHARES-}"
read -r -a options <<< "${OPTIONS---batch-size 256 --lr 1e-3 --warmup-epochs 3 --label-smoothing 0 --erasing 0.25 --fit-epochs}"
budget=${BUDGET:-540}
runs=${RUNS:-runs}
python=${PYTHON:-python3}
out=${OUT:-device_out}
MIN_LEFT=90  # seconds: compiling a big network and its first epoch, which always runs, take about this

fail() { echo "error: $*" >&2; exit 2; }
returned_files() {  # what one run sends back: its weight shards, report.json, train.log
    case $1 in resnet50v2) echo 6 ;; vgg16_bn | vgg16) echo 4 ;; *) echo 3 ;; esac
}
[ ${#archs[@]} -gt 0 ] || fail "ARCHS is empty: name the architectures to train"
[ "$(printf '%s\n' "${archs[@]}" | sort | uniq -d)" = "" ] || fail "ARCHS names an architecture twice"
for word in "${options[@]}"; do
    case $word in --name | --name=* | --output | --output=* | --out | --out=*)
        fail "OPTIONS may not set $word: each run is named after its architecture, in \$RUNS and \$OUT" ;;
    esac
done
if [ ${#epochs[@]} -eq 0 ]; then
    for arch in "${archs[@]}"; do
        if [ "$arch" = custom_cnn ]; then epochs+=(250); else epochs+=(300); fi
    done
elif [ ${#epochs[@]} -eq 1 ]; then
    for ((i = 1; i < ${#archs[@]}; i++)); do epochs+=("${epochs[0]}"); done
fi
[ ${#epochs[@]} -eq ${#archs[@]} ] || fail "EPOCHS has ${#epochs[@]} values for ${#archs[@]} architectures"
if [ ${#shares[@]} -eq 0 ]; then
    for arch in "${archs[@]}"; do shares+=(1); done
fi
[ ${#shares[@]} -eq ${#archs[@]} ] || fail "SHARES has ${#shares[@]} values for ${#archs[@]} architectures"
for share in "${shares[@]}"; do
    [[ $share =~ ^[1-9][0-9]*$ ]] || fail "SHARES takes whole numbers above 0, not '$share'"
done
files=0
for arch in "${archs[@]}"; do files=$((files + $(returned_files "$arch"))); done
[ "$files" -le 8 ] || fail "${archs[*]} would send back $files files and a call returns 8: split them over two calls"

if compgen -G ".devicepack/wheels/*.whl" > /dev/null; then  # the device lacks this Keras
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .devicepack/wheels/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-runs/.jax-cache}

mkdir -p "$out"
failed=()
for i in "${!archs[@]}"; do
    arch=${archs[$i]}
    left=$((budget - ($(date +%s) - STARTED)))
    if [ "$left" -lt "$MIN_LEFT" ]; then
        echo "$arch: not started, ${left} s of the ${budget} s budget left; the same call again continues"
        continue
    fi
    rest=0
    for ((j = i; j < ${#archs[@]}; j++)); do rest=$((rest + shares[j])); done
    share=$((left * shares[i] / rest))  # this run's part of what is left; the last run takes all of it
    echo "$arch: ${share} s of the ${left} s left"
    resume=()
    [ -f "$runs/$arch/checkpoint.npz" ] && resume=(--resume)
    mkdir -p "$out/$arch"
    "$python" "$here/device_train.py" train --arch "$arch" --epochs "${epochs[$i]}" --time-budget "$share" \
        --output "$runs" --out "$out/$arch" "${options[@]}" "${resume[@]}" 2>&1 | tee "$out/$arch/train.log" \
        || failed+=("$arch")
done
[ ${#failed[@]} -eq 0 ] || fail "failed: ${failed[*]} (see \$OUT/<arch>/train.log)"
