#!/usr/bin/env bash
# wavelstm against PyTorch and Keras on the same workloads, back to back in one
# run (workload by workload, so all three see the same load on a shared
# machine), then the machine's fp32 matrix-product peak, and one table of
# times and ratios.
#
#   benches/compare.sh [WORKLOADS]      default: seed,seq,wide,seq-infer,wide-infer,generate
#
# The peers have no `small` and no generation workload (`generate`,
# `generate-8`): those run ours only and show no peer figures. `generate-8`
# (about 10 s on a quiet 2-core machine, twice that under load) is left out
# of the default list; name it to include it.
#
# ISA=avx512|avx2|portable (default: the best this CPU runs) restricts both
# sides to one instruction set, so an AVX-512 machine can stand in for an
# AVX2 one: ours runs with WAVELSTM_ISA=$ISA; PyTorch and Keras with oneDNN,
# MKL and ATen held to it (ONEDNN_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS,
# ATEN_CPU_CAPABILITY), the sgemm peak's OpenBLAS with OPENBLAS_CORETYPE
# (Haswell for avx2). `portable` holds the peers to SSE4.1 (Nehalem), the
# nearest they have to our baseline build. The output says which
# instruction set each side reported it ran: ours from its device line,
# PyTorch from torch.backends.cpu.get_cpu_capability() and oneDNN's verbose
# line, numpy from OpenBLAS's core type.
#
# Environment: STEPS (timed steps, default 20), EPOCHS (timed seed epochs,
# default 3), AUDIO_SECONDS (timed seconds of audio per take for the
# generation workloads, default 5), TORCH_PY and KERAS_PY (the peers' interpreters, default
# /tmp/venv-torch/bin/python and /tmp/venv-tf/bin/python), PEERS (the peer
# scripts, default ../shared/bench beside the repository). A missing peer is
# reported and left out of the table. Nothing here runs in CI.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
workloads=${1:-seed,seq,wide,seq-infer,wide-infer,generate}
steps=${STEPS:-20}
epochs=${EPOCHS:-3}
audio_seconds=${AUDIO_SECONDS:-5}
torch_py=${TORCH_PY:-/tmp/venv-torch/bin/python}
keras_py=${KERAS_PY:-/tmp/venv-tf/bin/python}
peers=${PEERS:-$root/../shared/bench}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

isa=${ISA:-}
peer_env=() blas_env=(-u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
case $isa in
    "") ;;
    avx512) peer_env=(ONEDNN_MAX_CPU_ISA=AVX512_CORE MKL_ENABLE_INSTRUCTIONS=AVX512 ATEN_CPU_CAPABILITY=avx512) ;;
    avx2)
        peer_env=(ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2)
        blas_env=(-u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=Haswell)
        ;;
    portable)
        peer_env=(ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2 ATEN_CPU_CAPABILITY=default)
        blas_env=(-u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=Nehalem)
        ;;
    *)
        echo "compare: ISA=$isa: unknown instruction set (known: avx512, avx2, portable)" >&2
        exit 2
        ;;
esac
if [[ -n $isa ]]; then export WAVELSTM_ISA=$isa; fi
peer() { env "${peer_env[@]}" "$@"; }

(cd "$root" && cargo build --release --quiet)
bin=${CARGO_TARGET_DIR:-$root/target}/release/wavelstm

have() { # have NAME PYTHON MODULE: is the peer installed?
    if [[ ! -f "$peers/common.py" ]]; then
        echo "compare: no peer scripts in $peers: $1 skipped" >&2
        return 1
    fi
    if [[ ! -x "$2" ]] || ! "$2" -c "import $3" 2>/dev/null; then
        echo "compare: $1 not installed ($2 cannot import $3; see $peers/README.md): skipped" >&2
        return 1
    fi
}
use_torch=0 use_keras=0
have PyTorch "$torch_py" torch && use_torch=1
have Keras "$keras_py" keras && use_keras=1

# What PyTorch says it runs under these restrictions (oneDNN names its ISA
# on the first primitive it creates when verbose).
if [[ $use_torch == 1 ]]; then
    peer ONEDNN_VERBOSE=1 "$torch_py" - >"$out/torch_isa.txt" 2>/dev/null <<'PY' || true
import torch
print("aten:", torch.backends.cpu.get_cpu_capability())
torch.nn.LSTM(4, 8)(torch.ones(3, 1, 4))
PY
fi

results() { sed -n 's/^RESULT //p'; }
IFS=, read -r -a list <<<"$workloads"
for w in "${list[@]}"; do
    echo "== $w" >&2
    # Generation is timed in seconds of audio, and only ours runs it.
    case $w in
        generate*) ours_steps=$audio_seconds peer=0 ;;
        small) ours_steps=$steps peer=0 ;;
        *) ours_steps=$steps peer=1 ;;
    esac
    "$bin" bench --device cpu --workload "$w" --steps "$ours_steps" --epochs "$epochs" --json \
        >>"$out/ours.jsonl"
    peer_steps=(--steps "$steps" --seed-repeats "$epochs")
    if [[ $use_torch == 1 && $peer == 1 ]]; then
        (cd "$peers" && peer "$torch_py" torch_bench.py --workloads "$w" "${peer_steps[@]}" 2>/dev/null) \
            | results >>"$out/torch.jsonl"
    fi
    if [[ $use_keras == 1 && $peer == 1 ]]; then
        (cd "$peers" && peer "$keras_py" keras_bench.py --workloads "$w" "${peer_steps[@]}" 2>/dev/null) \
            | results >>"$out/keras.jsonl"
    fi
done
if [[ $use_torch == 1 ]]; then
    # OpenBLAS picks its native kernel only without these (see the peers' README),
    # the given one with OPENBLAS_CORETYPE.
    (cd "$peers" && peer env "${blas_env[@]}" "$torch_py" matmul_peak.py 2>"$out/peak.log") \
        | results >>"$out/peak.jsonl"
fi

ours_isa=$(sed -n 's/.*"device":"cpu ([^,]*, \([a-z0-9]*\))".*/\1/p' "$out/ours.jsonl" | sort -u | paste -sd/)
echo "Instruction sets: wavelstm ${ours_isa:-?} (asked: ${isa:-best})"
if [[ -f $out/torch_isa.txt ]]; then
    aten=$(sed -n 's/^aten: //p' "$out/torch_isa.txt")
    onednn=$(sed -n 's/.*,isa:\([^,]*\).*/\1/p' "$out/torch_isa.txt" | head -1)
    echo "  PyTorch: ATen ${aten:-?}, oneDNN ${onednn:-?} (${peer_env[*]:-unrestricted})"
fi
if [[ -f $out/peak.log ]]; then
    arch=$(sed -n "s/.*'architecture': '\([^']*\)'.*/\1/p" "$out/peak.log" | head -1)
    echo "  sgemm peak: OpenBLAS core ${arch:-?} (env ${blas_env[*]})"
fi
echo

python3 - "$out" <<'EOF'
import json, os, sys

out = sys.argv[1]
def load(name, key="workload"):
    path = os.path.join(out, name + ".jsonl")
    if not os.path.exists(path):
        return {}
    rows = [json.loads(l) for l in open(path) if l.strip()]
    return {r[key]: r for r in rows}

ours, torch, keras = load("ours"), load("torch"), load("keras")
peak = load("peak", key="peer")
peak_gflops = max((r["gflops"] for r in peak.values()), default=None)

def secs(r):
    return f"{r['median_s']:.4f}" if r else "-"

def ratio(mine, theirs):
    return f"{theirs['median_s'] / mine['median_s']:.2f}x" if mine and theirs else "-"

print("| workload | wavelstm s | PyTorch s | Keras s | vs PyTorch | vs Keras | wavelstm GFLOP/s | PyTorch GFLOP/s | % of peak |")
print("|---|---|---|---|---|---|---|---|---|")
for w, r in ours.items():
    t, k = torch.get(w), keras.get(w)
    # A free step is a matrix-vector product per take: a 2048^3 product's
    # peak says nothing about it.
    share = f"{100 * r['gflops'] / peak_gflops:.0f}%" if peak_gflops and r["kind"] not in ("epoch", "generate") else "-"
    tg = f"{t['gflops']:.1f}" if t and "gflops" in t else "-"
    ours_g = f"{r['gflops']:.1f}" if r["kind"] != "epoch" else "-"
    print(f"| {w} | {secs(r)} | {secs(t)} | {secs(k)} | {ratio(r, t)} | {ratio(r, k)} | {ours_g} | {tg} | {share} |")
print()
print("Times are medians (seed: one whole epoch; generate: one second of audio per take; others: one step). vs X = X's time / ours.")
for w, r in ours.items():
    if r["kind"] == "generate":
        print(f"{w}: real-time factor {r['rtf']:.2f}x counting every take, {r['rtf_per_take']:.2f}x per take (no peer runs it).")
for r in peak.values():
    print(f"fp32 matmul peak ({r['peer']}, 2048^3): {r['gflops']:.1f} GFLOP/s median, {r['gflops_best']:.1f} best")
if peak_gflops:
    print(f"% of peak is against {peak_gflops:.1f} GFLOP/s, the better median.")
EOF
