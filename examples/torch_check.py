"""wavelstm against PyTorch (float64), outside CI: the figures of the README's
"PyTorch in and out".

    cargo build --release
    python examples/torch_check.py [path/to/wavelstm]

1. Adam: from the same weights (a torch state dict given to `train --init`)
   on the same full batch, 1 and 5 steps of `--lr-schedule constant --clip 0`
   against `torch.optim.Adam`: parameters and both moments, relative L2.
2. Import: torch modules with `lstm.`/`rnn.` prefixes and nn.Sequential heads,
   saved as F32, F64, F16 and BF16, imported and run by `predict --raw`,
   against the module itself (max error relative to the output's peak).
3. Export: checkpoints trained by wavelstm (nn.LSTM-like; the seed preset's
   Keras cell; a stereo mu-law head), exported and loaded into
   examples/torch_model.py, against `predict --float` and `--raw`; then
   imported back, which must give the same prediction bit for bit.

Needs torch, numpy and safetensors. Works in a temporary directory.
"""

import json
import os
import subprocess
import sys
import tempfile
import wave

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch_model  # noqa: E402

ROOT = os.path.dirname(HERE)
W = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/wavelstm")
AUDIO = os.path.join(ROOT, "assets/audio")


def run(*args):
    r = subprocess.run([W, *args], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"wavelstm {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout.strip()


def read_wav(path):
    """[frames, channels] float64 from 16-bit PCM or 32-bit float WAV."""
    with open(path, "rb") as f:
        b = f.read()
    i, fmt = 12, None
    while i < len(b):
        cid, size = b[i : i + 4], int.from_bytes(b[i + 4 : i + 8], "little")
        if cid == b"fmt ":
            ch = int.from_bytes(b[i + 10 : i + 12], "little")
            bits = int.from_bytes(b[i + 22 : i + 24], "little")
            fmt = (ch, bits)
        elif cid == b"data":
            ch, bits = fmt
            x = np.frombuffer(b[i + 8 : i + 8 + size], "<f4" if bits == 32 else "<i2").astype(np.float64)
            return (x if bits == 32 else x / 32768.0).reshape(-1, ch)
        i += 8 + size + (size & 1)
    raise ValueError(f"{path}: no data chunk")


def cut(src, dst, start_s, seconds):
    with wave.open(src) as r:
        rate = r.getframerate()
        r.setpos(int(start_s * rate))
        frames = r.readframes(int(seconds * rate))
        with wave.open(dst, "wb") as w:
            w.setparams(r.getparams())
            w.writeframes(frames)


def windows(x, frame):
    n = x.shape[0] - frame
    return torch.stack([x[k : k + n] for k in range(frame)], dim=1).reshape(n, -1)


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def check_adam():
    H, FRAME, T = 24, 2, 16

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(FRAME, H, 2, batch_first=True)
            self.head = nn.Sequential(nn.Linear(H, 12), nn.LeakyReLU(0.3), nn.Linear(12, 1))

        def forward(self, x):
            return self.head(self.lstm(x)[0])

    torch.manual_seed(1)
    save_file({k: v.contiguous() for k, v in Net().state_dict().items()}, "init.safetensors")
    init = load_file("init.safetensors")
    x = read_wav("short.wav")[:, 0]
    n = len(x)
    train = n - round(n * 0.1)  # wavelstm's training part (--valid-fraction 0.1)
    starts = list(range(FRAME - 1, train - T, T))  # its sequences, in order
    ours = {k: k[5:] if k.startswith("lstm.") else k.replace("head.2.", "head.1.") for k in init}
    for steps in (1, 5):
        out = f"adam{steps}.safetensors"
        run("train", "short.wav", "--init", "init.safetensors", "--frame", str(FRAME), "--hidden", str(H),
            "--layers", "2", "--head", "12", "--leaky-slope", "0.3", "--seq-len", str(T),
            "--batch", str(len(starts)), "--no-shuffle", "--epochs", str(steps), "--max-steps", str(steps),
            "--lr-schedule", "constant", "--clip", "0", "--burn-in", "0", "--device", "cpu", "--out", out)
        with safe_open(out, framework="pt") as f:
            meta = json.loads(f.metadata()["wavelstm"])
            ck = {k: f.get_tensor(k).double().numpy() for k in f.keys()}
        model = Net().double()
        model.load_state_dict({k: v.double() for k, v in init.items()})
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
        s = torch.tensor(x / meta["config"]["scale"])
        xs = windows(s[:, None], FRAME)  # window t ends at frame t + FRAME - 1
        idx = torch.tensor([[p + t for t in range(T)] for p in starts]) - (FRAME - 1)
        inp, tgt = xs[idx], s[idx + FRAME][..., None]
        for _ in range(steps):
            opt.zero_grad()
            ((model(inp) - tgt) ** 2).mean().backward()
            opt.step()
        worst = {"parameters": 0.0, "m": 0.0, "v": 0.0}
        for k, p in model.named_parameters():
            st = opt.state[p]
            for what, want, key in (("parameters", p.detach(), ours[k]),
                                    ("m", st["exp_avg"], f"adam.m.{ours[k]}"),
                                    ("v", st["exp_avg_sq"], f"adam.v.{ours[k]}")):
                worst[what] = max(worst[what], rel_l2(ck[key], want.numpy()))
        print(f"adam, {steps} step(s) of a {len(starts)}x{T} batch: worst tensor vs torch.optim.Adam (float64), "
              "relative L2: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))


def check_import():
    class Net(nn.Module):
        def __init__(self, kind, frame, c):
            super().__init__()
            self.kind = kind
            if kind == "lstm+head":
                self.lstm = nn.LSTM(frame * c, 24, 2, batch_first=True)
                self.head = nn.Sequential(nn.Linear(24, 16), nn.LeakyReLU(), nn.Linear(16, c))
            elif kind == "rnn+fc":
                self.rnn = nn.LSTM(frame * c, 20, 1, batch_first=True)
                self.fc = nn.Linear(20, c)
            else:
                self.lstm = nn.LSTM(frame * c, 16, 1, batch_first=True)
                self.decoder = nn.Sequential(nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, c))

        def forward(self, x):
            h = (self.rnn if self.kind == "rnn+fc" else self.lstm)(x)[0]
            return {"lstm+head": lambda: self.head(h), "rnn+fc": lambda: self.fc(h),
                    "lstm+decoder": lambda: self.decoder(h)}[self.kind]()

    dtypes = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16}
    cases = [("lstm+head", 3, "mono.wav", 22050, 0.25, d, []) for d in dtypes]
    cases += [("rnn+fc", 1, "mono.wav", 22050, 1.0, "F32", []),
              ("lstm+decoder", 2, "stereo.wav", 44100, 0.5, "F32", ["--leaky-slope", "0"])]
    torch.manual_seed(0)
    worst = 0.0
    for kind, frame, clip, rate, scale, dtype, extra in cases:
        audio = read_wav(clip)
        net = Net(kind, frame, audio.shape[1])
        with torch.no_grad():  # larger than the default init, so the state matters
            for p in net.parameters():
                p.mul_(2.0)
        sd = {k: v.detach().to(dtypes[dtype]).contiguous() for k, v in net.state_dict().items()}
        save_file(sd, "sd.safetensors")
        net.load_state_dict({k: v.double() for k, v in sd.items()})
        net = net.double()
        run("import", "sd.safetensors", "--sample-rate", str(rate), "--scale", str(scale),
            "--out", "imported.safetensors", *extra)
        run("predict", "-m", "imported.safetensors", clip, "--out", "p.wav", "--raw", "p.npy", "--device", "cpu")
        with torch.no_grad():
            ref = (net(windows(torch.tensor(audio) / scale, frame)[None])[0] * scale).numpy()
        got = np.load("p.npy")[frame:]
        err = float(np.abs(got - ref).max() / np.abs(ref).max())
        worst = max(worst, err)
        print(f"import, {kind} ({dtype}, {clip}): predict --raw vs the module (float64): {err:.2e} of the peak")
    print(f"import: worst {worst:.2e}")


def check_export():
    run("train", "mono.wav", "--max-steps", "30", "--hidden", "24", "--layers", "2", "--head", "16",
        "--seq-len", "64", "--batch", "8", "--device", "cpu", "--out", "a.safetensors")
    run("train", "mono.wav", "--preset", "seed", "--max-steps", "30", "--hidden", "20", "--device", "cpu",
        "--out", "b.safetensors")
    run("train", "stereo.wav", "--channels", "stereo", "--output", "mulaw", "--max-steps", "20", "--hidden", "16",
        "--seq-len", "32", "--batch", "4", "--device", "cpu", "--out", "c.safetensors")
    worst = 0.0
    for ck, clip in [("a.safetensors", "mono.wav"), ("b.safetensors", "mono.wav"), ("c.safetensors", "stereo.wav")]:
        run("export", ck, "--out", "torch.safetensors")
        run("predict", "-m", ck, clip, "--float", "--out", "pf.wav", "--raw", "pr.npy", "--device", "cpu")
        spec, state = torch_model.read("torch.safetensors")
        model = torch_model.WaveLSTM(spec)
        model.load_state_dict(state)
        audio, wav, raw = read_wav(clip), read_wav("pf.wav"), np.load("pr.npy")
        for dtype in (torch.float64, torch.float32):
            ref = model.to(dtype).predict(audio)
            peak = np.abs(ref).max()
            e_wav = float(np.abs(wav - np.clip(ref, -1, 1)).max() / peak)
            e_raw = float(np.abs(raw - ref).max() / peak)
            worst = max(worst, e_wav, e_raw)
            print(f"export, {ck} ({spec['output']}, {spec['cell_activation']} cell, {spec['gate_activation']} gates, "
                  f"carry {spec['carry_state']}), torch {str(dtype)[6:]}: predict --float off by {e_wav:.2e}, "
                  f"--raw by {e_raw:.2e} of the peak")
        run("import", "torch.safetensors", "--out", "back.safetensors")
        run("predict", "-m", "back.safetensors", clip, "--raw", "back.npy", "--out", "pb.wav", "--device", "cpu")
        assert np.array_equal(np.load("back.npy"), raw), "export then import changed the prediction"
    print(f"export: worst {worst:.2e}; export then import: the same predictions bit for bit")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        cut(os.path.join(AUDIO, "orchestral_kaufman_heroes_rite_mono_22050.wav"), os.path.join(tmp, "mono.wav"), 2, 0.4)
        cut(os.path.join(AUDIO, "electronic_savino_palace.wav"), os.path.join(tmp, "stereo.wav"), 1, 0.25)
        cut(os.path.join(AUDIO, "orchestral_kaufman_heroes_rite_mono_22050.wav"), os.path.join(tmp, "short.wav"), 2, 0.1)
        os.chdir(tmp)
        check_adam()
        check_import()
        check_export()
