#!/usr/bin/env bash
# Install invcomp into .venv and run the whole test suite against the installed package.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
pytest -q "$@"
