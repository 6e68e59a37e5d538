#!/usr/bin/env bash
# Build the real-anime datasets that trained and evaluate the bundled colourisers (baselines/pretrained/MODEL_CARD.md).
#
#   bash docs/scripts/build_real_datasets.sh ../shared/data DATA [WORKERS]
#
# SHARED is the shared data folder (holding real/ and real-train/), DATA the output folder, **outside the
# repository**: the frames are copyrighted, never commit them or anything built from them except trained weights.
# Crops are the ones ../shared/data/real-train/README.md and ../shared/data/real/README.md ask for (watermarks,
# credits, pillarboxes, comparison-video panels). Every build uses the dataprep defaults (256-px short side, XDoG);
# a build that already finished is skipped, an interrupted one is resumed (`dataprep build --resume`).
#
# Training builds (rt-*, real-*) use the default 80/10/10 split by shot; `bench train` reads their train split.
# Evaluation-only builds (eval-*) put every shot in the test split and are never passed to `bench train`:
# colour-shots/lvcd_sample_1 and shot-clips/tre-net.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 SHARED_DATA OUT_DIR [WORKERS]" >&2
  exit 2
fi
SHARED=$1
OUT=$2
WORKERS=${3:-2}
TRAIN=$SHARED/real-train
REAL=$SHARED/real
SAKUGA=$TRAIN/KytraScript_SakugaDataset
ANITA=$TRAIN/zhenglinpan_AnitaDataset/assets
mkdir -p "$OUT"

build() {  # build NAME [dataprep build arguments...]; an existing NAME is resumed (a finished build: nothing to do)
  local name=$1
  shift
  local resume=()
  if [ -d "$OUT/$name" ]; then resume=(--resume); fi
  echo "$name"
  dataprep build "$@" --out "$OUT/$name" --workers "$WORKERS" -q "${resume[@]}"
}

# --- training material (../shared/data/real-train) ---
# Sakuga-42M previews without the pillarboxed sakura.gif (cropped below) and the colourless pencil genga undead_unluck.gif.
sakuga_gifs=()
for f in "$SAKUGA"/assets/gif/*.gif "$SAKUGA"/assets/gif_taxonomy/*.gif; do
  case $(basename "$f") in sakura.gif|undead_unluck.gif) continue ;; esac
  sakuga_gifs+=("$f")
done
build rt-sakuga "${sakuga_gifs[@]}" "$SAKUGA/download/download/140633.mp4"
build rt-sakura "$SAKUGA/assets/gif/sakura.gif" --set 'frames.crop=[52,0,373,240]'
build rt-bilibili "$TRAIN"/bilibili_Index-anisora/anisoraV1_train_npu/sat/demo_data/*.mp4 --set 'frames.crop=[0,0,1650,960]'
# Anita: the colour and composition GIFs (the sketch GIFs 01, 00151, 051, 00131, 081 carry no colour).
build rt-anita "$ANITA/02.gif" "$ANITA/00121_1_fps10.gif" "$ANITA/00161_1_fps10.gif" "$ANITA/061_1_fps10.gif" \
  "$ANITA/00141_1_fps10.gif" "$ANITA/071_1_fps10.gif"
build rt-dlavc "$TRAIN/coca-huang_DLAVC/data/GT/0000"
# AInimotion: file names sort in frame order (frames.json); credits bottom right cropped; one 10-frame shot,
# which the 80/10/10 split would put whole into val, so all of it trains.
build rt-ainimotion "$TRAIN/TWhit229_AInimotion/test_outputs" --split train --set 'frames.crop=[0,0,900,720]'

# --- real clips that are not evaluation material (../shared/data/real) ---
EISAI=$REAL/shot-clips/eisai
build real-eisai-480 "$EISAI/konobi_s01e007__000282.mp4" --set 'frames.crop=[0,0,480,405]'
build real-eisai-640 "$EISAI/konobi_s01e012__000339.mp4" "$EISAI/sakura_quest_s01e003__000082.mp4" --set 'frames.crop=[0,0,640,540]'
build real-eisai-960 "$EISAI/anohana_s01e001__000253.mp4" --set 'frames.crop=[0,0,960,540]'
build real-vinland "$REAL"/cut-clips/vinland_*.gif --set 'frames.crop=[0,0,640,360]'
build real-onepiece "$REAL/cut-clips/onepiece_demo.mp4"

# --- evaluation only: never pass these to bench train ---
build eval-lvcd_sample_1 "$REAL/colour-shots/lvcd_sample_1" --split test
build eval-tre-net "$REAL"/shot-clips/tre-net/*.mp4 --split test --set 'frames.crop=[0,0,409,512]'
echo "done: $OUT"
