#!/usr/bin/env bash
# Create the project's virtual environment (if missing) and install the project into it.
# Picks the first Python 3.10-3.12 found (compressai has no wheels for 3.13).
set -euo pipefail
venv=${1:-.venv}
if [ ! -x "$venv/bin/python" ]; then
  py=""
  for cand in "${PYTHON:-}" python3 python3.12 python3.11 python3.10; do
    [ -n "$cand" ] || continue
    command -v "$cand" >/dev/null 2>&1 || continue
    if "$cand" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 12)))'; then
      py=$cand
      break
    fi
  done
  if [ -z "$py" ]; then
    echo "make_venv: no Python 3.10-3.12 found (set PYTHON=/path/to/python3.x)" >&2
    exit 1
  fi
  echo "make_venv: creating $venv with $($py --version)"
  "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e '.[dev]'
echo "make_venv: installed dnerv-codec into $venv"
