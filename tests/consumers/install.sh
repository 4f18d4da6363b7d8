#!/usr/bin/env bash
# Venvs holding the consumers' own loading code, for tests/test_consumers.py.
#
#   bash tests/consumers/install.sh [DEST] [CONSUMER...]     (DEST default /work/venvs)
#   GRADESET_CONSUMER_VENVS=DEST pytest -q tests/test_consumers.py
#
# Consumers: datasets4 (HF datasets 4.0, standalone: it cannot share a site-packages with
# datasets 5), verl, llamafactory, openrlhf. The last three are installed --no-deps plus the
# few small modules their dataset / converter / reward code imports; torch, transformers and
# datasets come from BASE_VENV (the project's venv) through a .pth file, so nothing heavy is
# downloaded. Each venv is DEST/exports-NAME. Safe to re-run (existing venvs are kept).
set -euo pipefail
DEST=${1:-/work/venvs}
shift || true
CONSUMERS=("$@")
[ ${#CONSUMERS[@]} -eq 0 ] && CONSUMERS=(datasets4 verl llamafactory openrlhf)
BASE_VENV=${BASE_VENV:-$(cd "$(dirname "$0")/../.." && pwd)/.venv}
PY=${PYTHON:-python3}
mkdir -p "$DEST"

base_site() {
  "$BASE_VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])'
}

make_venv() {  # name, link-base(0/1)
  local v="$DEST/exports-$1"
  if [ ! -x "$v/bin/python" ]; then
    "$PY" -m venv "$v"
    "$v/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  fi
  if [ "$2" = 1 ]; then
    local own
    own=$("$v/bin/python" -c 'import site; print(site.getsitepackages()[0])')
    base_site > "$own/zz_gradeset_base.pth"
  fi
  echo "$v"
}

for c in "${CONSUMERS[@]}"; do
  start=$(date +%s)
  case "$c" in
    datasets4)
      v=$(make_venv datasets4 0)
      "$v/bin/pip" install -q "datasets==4.0.*" ;;
    verl)
      v=$(make_venv verl 1)
      "$v/bin/pip" install -q --no-deps "verl==0.9.1"
      "$v/bin/pip" install -q --no-deps omegaconf antlr4-python3-runtime==4.9.3 pylatexenc codetiming \
        tensordict pyvers cloudpickle ;;
    llamafactory)
      v=$(make_venv llamafactory 1)
      # its data package __init__ imports torchaudio (no build for torch 2.13): the loader imports
      # llamafactory.data.parser / .converter without that __init__ (tests/consumers/load_llamafactory.py)
      "$v/bin/pip" install -q --no-deps "llamafactory==0.9.5" ;;
    openrlhf)
      v=$(make_venv openrlhf 1)
      "$v/bin/pip" install -q --no-deps "openrlhf==0.11.2" pylatexenc ;;
    *) echo "unknown consumer $c (known: datasets4 verl llamafactory openrlhf)" >&2; exit 2 ;;
  esac
  echo "$c: $v ($(( $(date +%s) - start ))s)"
done
