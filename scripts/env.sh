# Sourced by the other scripts: a virtual environment in .venv with invcomp installed (not editable).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  python3 -m venv "$ROOT/.venv"
fi
"$ROOT/.venv/bin/pip" install -q --disable-pip-version-check "$ROOT[test]"
export PATH="$ROOT/.venv/bin:$PATH"
export INVCOMP_DATA="${INVCOMP_DATA:-$ROOT/../shared/data}"
