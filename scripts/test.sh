#!/usr/bin/env bash
# Install invcomp into .venv, lint it, and run the test suite against the installed package.
#   scripts/test.sh           everything (CI runs this)
#   scripts/test.sh --fast    lint + the quick subset (no slow or pretrained-model tests)
#   other arguments go to pytest, e.g. scripts/test.sh tests/formats -x
source "$(dirname "$0")/env.sh"
cd "$ROOT"
ruff check --quiet . || { echo "ruff found problems (ruff check --fix . repairs many)" >&2; exit 1; }
args=()
for a in "$@"; do
  if [ "$a" = "--fast" ]; then args+=(-m "not slow"); else args+=("$a"); fi
done
pytest -q "${args[@]}"
