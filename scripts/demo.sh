#!/usr/bin/env bash
# Compress one airplane (a test image from the data folder, or the image you give), decode it,
# print size and quality, and write original | reconstruction side by side into demo/.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
mkdir -p demo
IMAGE="${1:-}"
if [ -z "$IMAGE" ]; then
  IMAGE=demo/airplane.png
  python scripts/demo_helpers.py extract cifar10_airplane_test.npz 0 "$IMAGE"
fi
NAME="demo/$(basename "${IMAGE%.*}")"
invcomp fit "$IMAGE" -o "$NAME.icz"
invcomp decode "$NAME.icz" -o "$NAME.decoded.png" --original-size
python scripts/demo_helpers.py side-by-side "$IMAGE" "$NAME.decoded.png" "$NAME.side_by_side.png"
echo "original | reconstruction: $NAME.side_by_side.png"
