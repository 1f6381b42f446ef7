#!/usr/bin/env bash
# The bundled example with the `autocode` command only (run.py does the same with the Python API).
#
#   bash examples/community-governance/run.sh          # writes examples/community-governance/out/
#   bash examples/community-governance/run.sh /tmp/x   # or into another folder
#
# The interviews and their coding are illustrative, written for this example (see README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "${1:-$here/out}" && cd "${1:-$here/out}" && pwd)"
cd "$here"
# The agreement plots use matplotlib's default font, which lacks Chinese glyphs (the coder names show as boxes in
# the .png; the .md tables are fine): keep the terminal free of that warning.
export PYTHONWARNINGS="ignore:Glyph:UserWarning"

echo "== 1. Agreement between the two coders (all 12 interviews)"
autocode agree coded.csv --codebook codebook.csv --drop-uncoded --out "$out/agreement_coders.md"

echo "== 2. Train on the first 8 interviews (C01-C08), hold out C09-C12"
# coded.csv has one row per segment per coder and no line breaks inside texts, so rows can be picked by document
# (the header line, with the file's BOM, is kept as it is).
{ head -n 1 coded.csv; grep -E '^C0[1-8],' coded.csv; } > "$out/train.csv"
{ head -n 1 coded.csv; grep -E '^(C09|C1[0-2]),' coded.csv; } > "$out/heldout.csv"
autocode train --codebook codebook.csv --data "$out/train.csv" --out "$out/model"

echo "== 3. Pre-code the held-out interviews and compare the model with both coders"
autocode precode --model "$out/model" transcripts/C09.txt transcripts/C1[0-2].txt --out "$out/heldout_precoded.csv"
autocode agree "$out/heldout.csv" "$out/heldout_precoded.csv" --codebook codebook.csv --drop-uncoded \
  --bootstrap 0 --out "$out/agreement_heldout.md"
autocode agree "$out/heldout.csv" "$out/heldout_precoded.csv" --codebook codebook.csv --drop-uncoded \
  --bootstrap 0 --by category --out "$out/agreement_heldout_categories.md"

echo "== 4. Cross-validation over all 12 interviews (4 folds, each holding out whole interviews)"
autocode evaluate --codebook codebook.csv --data coded.csv --folds 4 --out "$out/evaluate.md"

echo "== 5. Pre-code the 3 new interviews"
autocode precode --model "$out/model" new/ --out "$out/precoded.csv"
autocode precode --model "$out/model" new/ --out "$out/precoded.qdpx"

echo "Done: reports and pre-coded files are in $out"
