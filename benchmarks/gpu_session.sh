#!/usr/bin/env bash
# Everything autocode measures on a lent GPU machine, as one call (it has no network and no autocode
# dependencies beyond PyTorch/transformers). Prepare on your own machine first:
#
#   echo /.whl/ >> .git/info/exclude; echo /.gpu/ >> .git/info/exclude
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
#       -d .whl rjieba OpenCC python-docx defusedxml datasets dill multiprocess
#   python benchmarks/pack_encoder.py --out .gpu/e5-pruned.tar.xz            # e5-small, corpus vocabulary
#   mkdir -p .gpu/data && cp -r ../shared/data/{misleading-photos-dev,cail2019-elements} .gpu/data/
#
# then run `bash benchmarks/gpu_session.sh` there with .whl and .gpu carried; results land in $OUT:
# throughput_cuda.{json,md} (+ compiled/), agreement_finetune.{json,md}, agreement_setfit.{json,md}, session.log
# (part siblings: one agreement_setfit result folder per process).
# PARTS picks what runs, in its order (default: throughput finetune pytest compile), e.g.
#   PARTS="setfit pytest setfit1" bash benchmarks/gpu_session.sh
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-out}
BUDGET=${BUDGET:-450}            # seconds for the whole script
PARTS=${PARTS:-"throughput finetune pytest compile"}
mkdir -p "$OUT"
T0=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
exec > >(tee -a "$OUT/session.log") 2>&1

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
python3 - <<'PY' || exit 1
import torch, transformers, datasets, pyarrow, rjieba, opencc
from autocode.backends.transformer.inference import _has_varlen
print("torch", torch.__version__, "transformers", transformers.__version__, "datasets", datasets.__version__,
      "pyarrow", pyarrow.__version__, "gpu", torch.cuda.get_device_name(0), "varlen", _has_varlen())
PY

unpack() { [ -d /tmp/e5/encoder ] || python3 benchmarks/pack_encoder.py --unpack .gpu/e5-pruned.tar.xz --to /tmp/e5; }
for part in $PARTS; do case $part in
throughput)
    echo "== throughput (left $(left) s)"
    timeout 150 python3 benchmarks/throughput.py --out "$OUT" ;;
finetune)
    echo "== fine-tuned e5 vs default (left $(left) s)"
    unpack && timeout 260 python3 benchmarks/agreement_finetune.py --model-name /tmp/e5/encoder \
        --data-dir .gpu/data --out-dir "$OUT" --seeds 0 --cail-docs 60 --budget-s 150 ;;
setfit)
    echo "== contrastive (SetFit-like) e5 vs frozen vs default, seed 0 (left $(left) s)"
    unpack && timeout $(( $(left) - 150 )) python3 benchmarks/agreement_setfit.py --model-name /tmp/e5/encoder \
        --data-dir .gpu/data --out-dir "$OUT" --seeds 0 --cail-docs 60 ;;
setfit1)
    echo "== contrastive, seed 1, interviews (left $(left) s)"
    unpack && timeout $(( $(left) - 5 )) python3 benchmarks/agreement_setfit.py --model-name /tmp/e5/encoder \
        --data-dir .gpu/data --out-dir "$OUT/seed1" --seeds 1 --cail-docs 0 ;;
siblings)
    # contrastive fine-tuning with and without hard sibling negatives: interview seeds 0-2 and CAIL as four
    # processes sharing the GPU and the host's cores (each fine-tune is far too small to fill an H100)
    echo "== contrastive vs sibling-negative contrastive, 4 processes (left $(left) s)"
    unpack || exit 1
    L=$(( $(left) - 15 ))
    pids=""
    for s in 0 1 2; do
        OMP_NUM_THREADS=4 timeout $L python3 benchmarks/agreement_setfit.py --model-name /tmp/e5/encoder \
            --data-dir .gpu/data --out-dir "$OUT/interviews$s" --seeds $s --cail-docs 0 > "$OUT/interviews$s.log" 2>&1 &
        pids="$pids $!"
    done
    OMP_NUM_THREADS=4 timeout $L python3 benchmarks/agreement_setfit.py --model-name /tmp/e5/encoder \
        --data-dir .gpu/data --out-dir "$OUT/cail" --seeds 0 --skip-interviews --cail-docs 60 --max-pairs 3000 \
        > "$OUT/cail.log" 2>&1 &
    wait $pids $!   # not a bare wait: it would also wait for the tee of this script's log, forever
    tail -n 4 "$OUT"/*.log ;;
pytest)
    echo "== pytest -m gpu (left $(left) s)"
    timeout 120 python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_inference.py tests/test_transformer.py ;;
compile)
    L=$(left)
    echo "== throughput --compile (left $L s)"
    if [ "$L" -gt 90 ]; then
        timeout $((L - 10)) python3 benchmarks/throughput.py --compile --shapes 12x768,12x384 --out "$OUT/compiled"
    fi ;;
esac
done
echo "== done in $(( $(date +%s) - T0 )) s"
