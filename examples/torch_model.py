"""A wavelstm model as a PyTorch module: loads what `wavelstm export` writes.

    import torch_model
    spec, state = torch_model.read("torch.safetensors")
    model = torch_model.WaveLSTM(spec)
    model.load_state_dict(state)

`model.predict(audio)` then gives what `wavelstm predict --raw` writes, from
`audio` as `[frames, channels]` floats in full-scale units (±1) at
`spec["sample_rate"]`, mixed to the model's channels. `model(x)` is the bare
network on normalized input windows.

The module (wavelstm's model, src/model.rs, in PyTorch's terms):

    lstm = nn.LSTM(frame * channels, hidden, layers, batch_first=True)
    head = nn.Sequential(Linear(hidden, w1), LeakyReLU, ..., Linear(., outputs)[, LeakyReLU])

with an optional LeakyReLU between the two. A model with Keras' cell
(hard-sigmoid gates, linear cell activation) has the same parameters but no
`nn.LSTM` equivalent: `KerasStyleLSTM` computes it step by step.

Normalization: the network reads `audio / scale`; an `mse` head's output
times `scale` is the next sample in audio units; a `mulaw` head's 256 logits
per channel give a distribution over the 256 mu-law levels (mu = 255), whose
expected value is the prediction. A model that learned the residual of
wavelstm's causal LPC-32 predicts that residual only: `predict` refuses it.

Needs torch, numpy and safetensors; not run in CI.
"""

import json

import numpy as np
import torch
from safetensors import safe_open
from torch import nn

SPEC_KEY = "wavelstm_module"
MU = 255.0
CLASSES = 256


def read(path):
    """The module's description and its state dict from an exported file."""
    with safe_open(path, framework="pt") as f:
        spec = json.loads(f.metadata()[SPEC_KEY])
        state = {k: f.get_tensor(k) for k in f.keys()}
    if spec.get("format") != "wavelstm-torch-1":
        raise ValueError(f"{path}: not written by `wavelstm export`")
    return spec, state


class KerasStyleLSTM(nn.Module):
    """nn.LSTM's parameters and gate order (i, f, g, o) with a choice of gate
    activation (logistic or Keras 2.2's hard sigmoid, clip(0.2x + 0.5, 0, 1))
    and cell activation (tanh or none), batch first."""

    def __init__(self, input_size, hidden, layers, gate, cell):
        super().__init__()
        self.hidden, self.layers = hidden, layers
        self.gate, self.cell = gate, cell
        for k in range(layers):
            i = input_size if k == 0 else hidden
            self.register_parameter(f"weight_ih_l{k}", nn.Parameter(torch.empty(4 * hidden, i)))
            self.register_parameter(f"weight_hh_l{k}", nn.Parameter(torch.empty(4 * hidden, hidden)))
            self.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.empty(4 * hidden)))
            self.register_parameter(f"bias_hh_l{k}", nn.Parameter(torch.empty(4 * hidden)))

    def _gate(self, x):
        if self.gate == "hard-sigmoid":
            return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)
        return torch.sigmoid(x)

    def _cell(self, x):
        return x if self.cell == "linear" else torch.tanh(x)

    def forward(self, x):
        b, t, _ = x.shape
        for k in range(self.layers):
            w_ih, w_hh = getattr(self, f"weight_ih_l{k}"), getattr(self, f"weight_hh_l{k}")
            bias = getattr(self, f"bias_ih_l{k}") + getattr(self, f"bias_hh_l{k}")
            pre = x @ w_ih.T + bias  # every timestep's input part at once
            h = x.new_zeros(b, self.hidden)
            c = x.new_zeros(b, self.hidden)
            out = []
            for s in range(t):
                z = pre[:, s] + h @ w_hh.T
                i, f, g, o = z.chunk(4, dim=1)
                c = self._gate(f) * c + self._gate(i) * self._cell(g)
                h = self._gate(o) * self._cell(c)
                out.append(h)
            x = torch.stack(out, dim=1)
        return x, None


def _activation(name, slope):
    return nn.LeakyReLU(slope) if name == "leaky-relu" else nn.Identity()


class WaveLSTM(nn.Module):
    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        c, frame, hidden = spec["channels"], spec["frame"], spec["hidden"]
        slope = spec["leaky_slope"]
        if spec["cell_activation"] == "tanh" and spec["gate_activation"] == "sigmoid":
            self.lstm = nn.LSTM(frame * c, hidden, spec["layers"], batch_first=True)
        else:
            self.lstm = KerasStyleLSTM(
                frame * c, hidden, spec["layers"], spec["gate_activation"], spec["cell_activation"]
            )
        self.after_lstm = _activation(spec["lstm_activation"], slope)
        outputs = c * {"mse": 1, "mulaw": CLASSES, "laplace": 2, "logistic": 2}[spec["output"]]
        widths = [hidden] + spec["head"] + [outputs]
        layers = []
        for j in range(len(widths) - 1):
            if j > 0:
                layers.append(nn.LeakyReLU(slope))
            layers.append(nn.Linear(widths[j], widths[j + 1]))
        if spec["output_activation"] == "leaky-relu":
            layers.append(nn.LeakyReLU(slope))
        self.head = nn.Sequential(*layers)

    def forward(self, x):
        """x: [B, T, frame * channels] normalized windows (oldest frame first,
        channel fastest) -> the head's outputs [B, T, outputs], the state
        starting from zero."""
        h, _ = self.lstm(x)
        return self.head(self.after_lstm(h))

    def windows(self, audio):
        """[frames, channels] audio -> [frames - frame, frame * channels]
        normalized windows; window t ends at frame t + frame - 1."""
        x = torch.as_tensor(np.asarray(audio), dtype=self._dtype()) / self.spec["scale"]
        frame = self.spec["frame"]
        n = x.shape[0] - frame
        return torch.stack([x[k : k + n] for k in range(frame)], dim=1).reshape(n, -1)

    def _dtype(self):
        return next(self.parameters()).dtype

    @torch.no_grad()
    def predict(self, audio):
        """What `wavelstm predict --raw` writes: [frames, channels] in audio
        units, row n predicted from the frames before it (the first `frame`
        rows hold the audio)."""
        if self.spec.get("residual_scale") is not None:
            raise NotImplementedError(
                "this model learned the residual of wavelstm's LPC-32 predictor; "
                "the module's output is that residual, not the next sample"
            )
        if self.spec["output"] in ("laplace", "logistic"):
            raise NotImplementedError(
                "predict of a location-scale head is not written yet; model(x) gives its outputs"
            )
        audio = np.asarray(audio, dtype=np.float64)
        w = self.windows(audio)
        # A model trained without carried state starts every timestep from zero.
        x = w[None] if self.spec["carry_state"] else w[:, None]
        y = self(x).reshape(w.shape[0], -1)
        c = self.spec["channels"]
        if self.spec["output"] == "mulaw":
            k = torch.arange(CLASSES, dtype=y.dtype)
            level = 2.0 * k / MU - 1.0
            value = torch.sign(level) * ((1.0 + MU) ** level.abs() - 1.0) / MU
            p = torch.softmax(y.reshape(-1, c, CLASSES), dim=-1)
            pred = (p * value).sum(-1)
        else:
            pred = y * self.spec["scale"]
        out = np.array(audio, dtype=np.float64)
        out[self.spec["frame"] :] = pred.double().numpy()
        return out
