# Sourced by the other scripts: a virtual environment in .venv with invcomp installed (not editable).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  python3 -m venv "$ROOT/.venv"
fi
"$ROOT/.venv/bin/pip" install -q --disable-pip-version-check "$ROOT[test]"
export PATH="$ROOT/.venv/bin:$PATH"
# the data folder: as given, else ../shared/data beside the checkout, else data/ (`invcomp data prepare` fills it)
if [ -z "${INVCOMP_DATA:-}" ]; then
  if [ -d "$ROOT/../shared/data" ]; then INVCOMP_DATA="$ROOT/../shared/data"; else INVCOMP_DATA="$ROOT/data"; fi
fi
export INVCOMP_DATA
