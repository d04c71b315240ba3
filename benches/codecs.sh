#!/usr/bin/env bash
# Bits per sample of FLAC and WavPack on exactly the samples `wavelstm eval`
# scores, beside eval's own figures (LPC-32, the cascade, the model), one table.
# A measure, not part of CI.
#
#   benches/codecs.sh [--model CHECKPOINT] CLIP...
#
# Without --model, a tiny mono model is trained for 3 steps on the first clip
# (the classic predictors' and the cascade's figures do not depend on the model;
# its own figure then means nothing). The scored samples are written by
# `examples/scored_samples.rs`: the model's layout and rate, the last
# valid-fraction, rounded to 16 bits with no dither, so they are the integers
# eval counts the bits of. Codecs: `flac -8 --no-padding --no-seektable`,
# `wavpack -hhx6`; their bits per sample are 8 x file size / samples (headers
# included, a few dozen bytes). Needs flac, wavpack and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

model=""
if [[ "${1:-}" == "--model" ]]; then
    model="$2"
    shift 2
fi
if [[ $# -eq 0 ]]; then
    echo "usage: benches/codecs.sh [--model CHECKPOINT] CLIP..." >&2
    exit 2
fi
for tool in flac wavpack python3; do
    command -v "$tool" >/dev/null || { echo "error: $tool is not installed" >&2; exit 1; }
done

cargo build --release --quiet --bin wavelstm --example scored_samples
bin=target/release/wavelstm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ -z "$model" ]]; then
    model="$work/tiny.safetensors"
    "$bin" train "$1" --out "$model" --max-steps 3 --hidden 8 --seq-len 64 --batch 4 \
        --seed 5 --device cpu >/dev/null 2>&1
fi

"$bin" eval --model "$model" "$@" --json --device cpu 2>/dev/null >"$work/eval.json"
target/release/examples/scored_samples "$model" "$work/scored" "$@" >"$work/scored.txt"

: >"$work/codecs.txt"
while read -r wav samples; do
    flac -8 --no-padding --no-seektable -f -s -o "$wav.flac" "$wav"
    wavpack -hhx6 -q -y "$wav" -o "$wav.wv" >/dev/null 2>&1
    echo "$samples $(stat -c %s "$wav.flac") $(stat -c %s "$wav.wv")" >>"$work/codecs.txt"
done <"$work/scored.txt"

python3 - "$work/eval.json" "$work/codecs.txt" <<'PY'
import json, os, sys
doc = json.load(open(sys.argv[1]))
codecs = [l.split() for l in open(sys.argv[2])]
print(f"bits per sample of the scored part ({doc['sample_rate']} Hz, {doc['channel_mode']}), 16-bit")
head = ["song", "samples", "flac -8", "wavpack -hhx6", "LPC-32", "cascade", "model"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for song, (n, fl, wv) in zip(doc["songs"], codecs):
    n = int(n)
    assert n == song["samples"], "the scored samples differ from eval's"
    b = lambda k: f"{song[k]['bits_per_sample']:.3f}"
    row = [os.path.basename(song["song"]), str(n), f"{8 * int(fl) / n:.3f}",
           f"{8 * int(wv) / n:.3f}", b("lpc"), b("cascade"), b("model")]
    print("| " + " | ".join(row) + " |")
PY
