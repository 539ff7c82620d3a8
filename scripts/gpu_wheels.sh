#!/usr/bin/env bash
# make gpu-wheels: everything scripts/gpu_check.sh needs that the GPU machine lacks, in the ignored folder
# .gpu/ (at most 60 MiB), which travels with the working tree when the device call names it in `carry`:
#   .gpu/wheels/  the wheels of scripts/gpu_wheels.txt for Python 3.12 manylinux x86_64 (pip download)
#   .gpu/data/    the COCO and MPII samples from ../shared/data (the GPU machine has no ../shared)
#   .gpu/guard/   the accuracy guard's trained model, when weights/guard (or $DEHRNET_HOME) holds it
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LIMIT_MIB=60
rm -rf .gpu/wheels
mkdir -p .gpu/wheels .gpu/data .gpu/guard
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
           manylinux_2_5_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$tag")
done
grep -v '^#' scripts/gpu_wheels.txt | xargs "$PY" -m pip download -q --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp "${platforms[@]}" -d .gpu/wheels
for sample in coco_sample mpii_sample; do
  if [ -d "../shared/data/$sample" ]; then rm -rf ".gpu/data/$sample"; cp -r "../shared/data/$sample" .gpu/data/; fi
done
guard=$("$PY" -c "from dehrnet_cli.precision.guard import guard_model_path; print(guard_model_path())" 2>/dev/null || true)
if [ -n "$guard" ] && [ -f "$guard" ]; then cp "$guard" .gpu/guard/; else echo "gpu-wheels: no trained guard model ($guard): make guard first, or the fp16 keypoint test skips"; fi
size_kib=$(du -sk .gpu | cut -f1)
echo "gpu-wheels: .gpu holds $((size_kib / 1024)) MiB:"
du -sh .gpu/wheels .gpu/data .gpu/guard
ls .gpu/wheels
if [ "$size_kib" -gt $((LIMIT_MIB * 1024)) ]; then echo "gpu-wheels: over $LIMIT_MIB MiB" >&2; exit 1; fi
