#!/usr/bin/env bash
# GPU smoke test, offline: vLLM generation throughput and a short GRPO run, on the embedded
# model gradeset:arith-tiny and on every local model folder given as an argument.
#
#   bash benchmarks/gpu_smoke.sh [MODEL_DIR ...]
#
# Needs: a CUDA GPU, `pip install -e '.[train,vllm]'` done beforehand (nothing is downloaded:
# HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE are set). Prints one table and writes
# benchmarks/results/gpu_smoke.json (override with GPU_SMOKE_OUT). Knobs (environment):
#   GPU_SMOKE_PROMPTS (512)   prompts sampled per model      GPU_SMOKE_N (8)  samples per prompt
#   GPU_SMOKE_STEPS (20)      GRPO steps per model           GPU_SMOKE_WORK   scratch folder
#   GPU_SMOKE_MAX_TOKENS (512) new tokens for a real model (the embedded one needs 6)
set -euo pipefail

die() { echo "gpu_smoke: $*" >&2; exit 2; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
PROMPTS="${GPU_SMOKE_PROMPTS:-512}"
N="${GPU_SMOKE_N:-8}"
STEPS="${GPU_SMOKE_STEPS:-20}"
REAL_TOKENS="${GPU_SMOKE_MAX_TOKENS:-512}"
OUT_JSON="${GPU_SMOKE_OUT:-$REPO/benchmarks/results/gpu_smoke.json}"
WORK="${GPU_SMOKE_WORK:-$(mktemp -d -t gradeset-gpu-smoke.XXXXXX)}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 GRADESET_NO_PROGRESS=1
export TOKENIZERS_PARALLELISM=false PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

command -v "$PY" >/dev/null || die "no '$PY' on PATH (set PYTHON=/path/to/python)"
command -v nvidia-smi >/dev/null || die "nvidia-smi not found: this script needs a machine with an NVIDIA GPU"
nvidia-smi -L >/dev/null 2>&1 || die "nvidia-smi cannot see a GPU (driver not loaded?)"
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' \
  || die "torch does not see CUDA (a CPU-only torch build?); install a CUDA build of torch"
"$PY" -c 'import vllm' 2>/dev/null || die "vllm is not importable: pip install -e '.[vllm]' (before going offline)"
"$PY" -c 'import trl, peft' 2>/dev/null || die "trl/peft are not importable: pip install -e '.[train]'"
for m in "$@"; do
  [[ -d "$m" && -f "$m/config.json" ]] || die "$m: not a local model folder (no config.json); models cannot be downloaded here"
done
mkdir -p "$WORK" "$(dirname "$OUT_JSON")"
echo "gpu_smoke: work folder $WORK"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

# prompt-only arithmetic questions (question/answer), the same for every model
"$PY" -m gradeset synth arithmetic --out "$WORK/unused_train.jsonl" --n 10 --test-out "$WORK/prompts.jsonl" \
  --test-n "$PROMPTS" --seed 1 >/dev/null

RESULTS="$WORK/results.jsonl"
: > "$RESULTS"

smoke_one() {  # $1 model (gradeset:NAME or folder), $2 label, $3 max new tokens, $4 extra train flags
  local model="$1" label="$2" tokens="$3" extra="$4" dir="$WORK/$2"
  mkdir -p "$dir"
  echo
  echo "== $label ($model)"
  local t0 t1 t2
  t0=$(date +%s.%N)
  "$PY" -m gradeset generate "$WORK/prompts.jsonl" --out "$dir/samples.jsonl" --backend vllm --model "$model" \
    -n "$N" --temperature 1.0 --max-tokens "$tokens" --seed 0 --quiet \
    || die "$label: vLLM generation failed (see above)"
  t1=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$PY" -m gradeset train grpo --data "$WORK/prompts.jsonl" --model "$model" --out "$dir/grpo" --task math \
    --num-generations 8 --batch-size 16 --max-steps "$STEPS" --max-completion-length "$tokens" \
    --lr 1e-5 --logging-steps 5 --run-id smoke $extra \
    || die "$label: GRPO training failed (see above)"
  t2=$(date +%s.%N)
  "$PY" - "$dir" "$label" "$model" "$t0" "$t1" "$t2" "$RESULTS" <<'PYEOF'
import json, sys
from pathlib import Path
d, label, model, t0, t1, t2, results = sys.argv[1:]
d, t0, t1, t2 = Path(d), float(t0), float(t1), float(t2)
rows = [json.loads(l) for l in (d / "samples.jsonl").read_text().splitlines() if l.strip()]
resp = [r for g in rows for r in g.get("responses", [])]
toks = sum(int((r.get("meta") or {}).get("completion_tokens") or 0) for r in resp)
summary = json.loads(next((d / "grpo" / "debug").glob("*_train.json")).read_text())
gen_s, train_s = t1 - t0, summary["train_runtime_s"]
rec = {"label": label, "model": model, "prompts": len(rows), "samples": len(resp), "completion_tokens": toks,
       "generate_wall_s": round(gen_s, 2), "samples_per_s": round(len(resp) / gen_s, 1),
       "tokens_per_s": round(toks / gen_s, 1), "grpo_steps": summary["global_step"],
       "grpo_train_s": train_s, "grpo_steps_per_s": round(summary["global_step"] / train_s, 3),
       "grpo_wall_s": round(t2 - t1, 2), "lora": summary["lora"]}
with open(results, "a") as fh:
    fh.write(json.dumps(rec) + "\n")
PYEOF
}

smoke_one "gradeset:arith-tiny" "arith-tiny" 6 ""
i=0
for m in "$@"; do
  i=$((i + 1))
  smoke_one "$(cd "$m" && pwd)" "model$i-$(basename "$m")" "$REAL_TOKENS" "--lora"
done

"$PY" - "$RESULTS" "$OUT_JSON" <<'PYEOF'
import json, platform, sys
import torch
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cols = ["label", "samples", "samples_per_s", "tokens_per_s", "grpo_steps", "grpo_steps_per_s", "lora"]
print()
print("  ".join(f"{c:>16}" for c in cols))
for r in rows:
    print("  ".join(f"{str(r[c]):>16}" for c in cols))
payload = {"gpu": torch.cuda.get_device_name(0), "host": platform.node(), "results": rows}
with open(sys.argv[2], "w") as fh:
    json.dump(payload, fh, indent=2)
print(f"\nwritten {sys.argv[2]}")
PYEOF
