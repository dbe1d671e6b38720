#!/usr/bin/env bash
# Compress one airplane (a test image from the data folder, or the image you give), decode it,
# print size and quality, and write original | reconstruction side by side into demo/.
#   scripts/demo.sh            a test airplane: from $INVCOMP_DATA (default ../shared/data), else the
#                              CIFAR-10 test split prepared into data/ (`invcomp data prepare`, a 163 MB download)
#   scripts/demo.sh my.png     your own image; needs no data at all
source "$(dirname "$0")/env.sh"
cd "$ROOT"
mkdir -p demo
IMAGE="${1:-}"
if [ -z "$IMAGE" ]; then
  TEST=cifar10_airplane_test.npz
  if [ ! -f "$INVCOMP_DATA/$TEST" ] && [ -f "$ROOT/data/$TEST" ]; then
    export INVCOMP_DATA="$ROOT/data"
  elif [ ! -f "$INVCOMP_DATA/$TEST" ]; then
    echo "demo: no $TEST in $INVCOMP_DATA; preparing the CIFAR-10 test split into data/" >&2
    if invcomp data prepare cifar10_airplane --split test --root "$ROOT/data"; then
      export INVCOMP_DATA="$ROOT/data"
    else
      echo "demo: no test images here; pass an image instead: scripts/demo.sh my.png (it needs no data)" >&2
      exit 1
    fi
  fi
  IMAGE=demo/airplane.png
  python scripts/demo_helpers.py extract "$TEST" 0 "$IMAGE"
fi
NAME="demo/$(basename "${IMAGE%.*}")"
invcomp fit "$IMAGE" -o "$NAME.icz"
invcomp decode "$NAME.icz" -o "$NAME.decoded.png" --original-size
python scripts/demo_helpers.py side-by-side "$IMAGE" "$NAME.decoded.png" "$NAME.side_by_side.png"
echo "original | reconstruction: $NAME.side_by_side.png"
