//! PyTorch state dicts in and out: names, dtypes and shapes mapped onto the
//! model, refusals that list what a file holds, export then import giving the
//! same model, and `predict --raw` agreeing with the WAV it accompanies.
//! (Agreement with PyTorch itself is checked outside CI: examples/torch_model.py.)

mod common;
use common::{asset, run, s, text, tmpdir};

use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::Path;
use wavelstm::audio::ChannelMode;
use wavelstm::checkpoint;
use wavelstm::model::{Activation, Output};
use wavelstm::rng::SplitMix64;
use wavelstm::torch_io::export::{export, torch_name};
use wavelstm::torch_io::import::{import, ImportOptions};

/// `(name, shape)` of every tensor of a state dict.
type Tensors = Vec<(String, Vec<usize>)>;

/// `(name, shape)` of a torch module `lstm = nn.LSTM(inputs, h, layers)`,
/// `head = nn.Sequential(Linear(h, w0), LeakyReLU, Linear(w0, out))`.
fn module(
    prefix: &str,
    inputs: usize,
    h: usize,
    layers: usize,
    w0: usize,
    out: usize,
) -> Vec<(String, Vec<usize>)> {
    let mut t = Vec::new();
    for k in 0..layers {
        let i = if k == 0 { inputs } else { h };
        t.push((format!("{prefix}weight_ih_l{k}"), vec![4 * h, i]));
        t.push((format!("{prefix}weight_hh_l{k}"), vec![4 * h, h]));
        t.push((format!("{prefix}bias_ih_l{k}"), vec![4 * h]));
        t.push((format!("{prefix}bias_hh_l{k}"), vec![4 * h]));
    }
    t.push(("head.0.weight".into(), vec![w0, h]));
    t.push(("head.0.bias".into(), vec![w0]));
    t.push(("head.2.weight".into(), vec![out, w0]));
    t.push(("head.2.bias".into(), vec![out]));
    t
}

/// Random values for `tensors`, exactly representable in every dtype
/// (multiples of 2⁻⁸ below 1 in magnitude fit F16 and BF16).
fn values(tensors: &[(String, Vec<usize>)], seed: u64) -> Vec<Vec<f32>> {
    let mut rng = SplitMix64::new(seed);
    tensors
        .iter()
        .map(|(_, shape)| {
            (0..shape.iter().product::<usize>())
                .map(|_| (rng.uniform(-1.0, 1.0) * 256.0).round() as f32 / 256.0)
                .collect()
        })
        .collect()
}

fn encode(v: &[f32], dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Dtype::F64 => v.iter().flat_map(|&x| f64::from(x).to_le_bytes()).collect(),
        Dtype::F16 => v
            .iter()
            .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
            .collect(),
        Dtype::BF16 => v
            .iter()
            .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
            .collect(),
        Dtype::I64 => v.iter().flat_map(|&x| (x as i64).to_le_bytes()).collect(),
        d => panic!("{d:?}"),
    }
}

fn save(path: &Path, tensors: &[(String, Vec<usize>)], vals: &[Vec<f32>], dtype: Dtype) {
    let bytes: Vec<Vec<u8>> = vals.iter().map(|v| encode(v, dtype)).collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, s), b)| (n.clone(), TensorView::new(dtype, s.clone(), b).unwrap()))
        .collect();
    let buf = safetensors::tensor::serialize(views, &None::<HashMap<String, String>>).unwrap();
    std::fs::write(path, buf).unwrap();
}

#[test]
fn a_prefixed_sequential_state_dict_imports_in_every_float_dtype() {
    let dir = tmpdir("torch-import");
    let tensors = module("lstm.", 3, 6, 2, 5, 1);
    let vals = values(&tensors, 1);
    for dtype in [Dtype::F32, Dtype::F64, Dtype::F16, Dtype::BF16] {
        let path = dir.join(format!("{dtype:?}.safetensors"));
        save(&path, &tensors, &vals, dtype);
        let (ck, mapped) = import(&path, &ImportOptions::default()).unwrap();
        let m = &ck.config.model;
        assert_eq!(
            (
                m.channels,
                m.frame,
                m.hidden,
                m.layers,
                m.head.clone(),
                m.output
            ),
            (1, 3, 6, 2, vec![5], Output::Mse),
            "{dtype:?}"
        );
        assert_eq!(mapped.lstm_path, "lstm");
        assert_eq!(mapped.dense_paths, ["head.0", "head.2"]);
        let layout = m.layout();
        for ((name, _), v) in tensors.iter().zip(&vals) {
            let ours = name
                .strip_prefix("lstm.")
                .map(str::to_string)
                .unwrap_or_else(|| name.replace("head.2.", "head.1."));
            let e = layout.get(&ours).unwrap();
            assert_eq!(
                &ck.state.params[e.offset..e.offset + e.len],
                &v[..],
                "{dtype:?} {name}"
            );
        }
        assert!(ck
            .state
            .adam_m
            .iter()
            .chain(&ck.state.adam_v)
            .all(|&x| x == 0.0));
        // A full checkpoint: it saves and loads as any other.
        let out = dir.join("ck.safetensors");
        checkpoint::save(&out, &ck).unwrap();
        assert_eq!(checkpoint::load(&out).unwrap(), ck);
    }
}

#[test]
fn shapes_give_channels_frame_and_the_mulaw_head() {
    let dir = tmpdir("torch-shapes");
    // Stereo (two outputs), frame 2: four inputs; `rnn.` and `fc.`-style names.
    let mut t = vec![
        ("rnn.weight_ih_l0".to_string(), vec![16, 4]),
        ("rnn.weight_hh_l0".to_string(), vec![16, 4]),
        ("rnn.bias_ih_l0".to_string(), vec![16]),
        ("rnn.bias_hh_l0".to_string(), vec![16]),
        ("fc.weight".to_string(), vec![2, 4]),
        ("fc.bias".to_string(), vec![2]),
    ];
    let path = dir.join("stereo.safetensors");
    save(&path, &t, &values(&t, 2), Dtype::F32);
    let (ck, _) = import(&path, &ImportOptions::default()).unwrap();
    let m = &ck.config.model;
    assert_eq!((m.channels, m.frame, m.head.len()), (2, 2, 0));
    assert_eq!(ck.config.channel_mode, ChannelMode::Stereo);
    // 256 logits of one channel: a μ-law head, mono, frame 4, scaled as asked.
    t[0].1 = vec![16, 4];
    t[4].1 = vec![256, 4];
    t[5].1 = vec![256];
    let path = dir.join("mulaw.safetensors");
    save(&path, &t, &values(&t, 3), Dtype::F32);
    let opts = ImportOptions {
        scale: Some(0.25),
        sample_rate: Some(16_000),
        seq_len: Some(1),
        output_activation: Some(Activation::LeakyRelu),
        ..ImportOptions::default()
    };
    let (ck, _) = import(&path, &opts).unwrap();
    let (c, m) = (&ck.config, &ck.config.model);
    assert_eq!((m.channels, m.frame), (1, 4));
    assert_eq!(m.output, Output::Mulaw { scale: 0.25 });
    assert_eq!((c.scale, c.sample_rate, c.data.seq_len), (0.25, 16_000, 1));
    assert_eq!(m.output_activation, Activation::LeakyRelu);
    // A check that does not hold is refused.
    let bad = ImportOptions {
        frame: Some(3),
        ..ImportOptions::default()
    };
    let e = import(&path, &bad).unwrap_err().to_string();
    assert!(e.contains("--frame 3 does not fit"), "{e}");
}

#[test]
fn what_does_not_fit_is_refused_with_a_listing() {
    let dir = tmpdir("torch-refuse");
    let base = module("lstm.", 1, 4, 1, 3, 1);
    let cases: Vec<(&str, Tensors, Dtype)> = vec![
        (
            "4 gates",
            {
                // A GRU's 3H rows.
                let mut t = base.clone();
                t[0].1 = vec![12, 1];
                t[1].1 = vec![12, 4];
                t[2].1 = vec![12];
                t[3].1 = vec![12];
                t
            },
            Dtype::F32,
        ),
        (
            "bidirectional",
            {
                let mut t = base.clone();
                t.push(("lstm.weight_ih_l0_reverse".into(), vec![16, 1]));
                t
            },
            Dtype::F32,
        ),
        (
            "input must be 3 wide",
            {
                let mut t = base.clone();
                t[6].1 = vec![1, 2];
                t
            },
            Dtype::F32,
        ),
        (
            "neither an LSTM tensor",
            {
                let mut t = base.clone();
                t.push(("norm.running_mean".into(), vec![2, 2, 2]));
                t
            },
            Dtype::F32,
        ),
        (
            "weights must be F16, BF16, F32 or F64",
            base.clone(),
            Dtype::I64,
        ),
        (
            "7 outputs",
            {
                let mut t = base.clone();
                t[6].1 = vec![7, 3];
                t[7].1 = vec![7];
                t
            },
            Dtype::F32,
        ),
    ];
    for (want, t, dtype) in cases {
        let path = dir.join("bad.safetensors");
        save(&path, &t, &values(&t, 4), dtype);
        let e = import(&path, &ImportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
        assert!(e.contains(want), "expected `{want}` in: {e}");
        if dtype == Dtype::F32 && want != "7 outputs" {
            assert!(e.contains("the file holds: head.0.bias [3]"), "{e}");
        }
    }
    // A wavelstm checkpoint is not a state dict to import.
    let path = dir.join("ok.safetensors");
    save(&path, &base, &values(&base, 5), Dtype::F32);
    let (ck, _) = import(&path, &ImportOptions::default()).unwrap();
    let ckp = dir.join("ck.safetensors");
    checkpoint::save(&ckp, &ck).unwrap();
    let e = import(&ckp, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("is a wavelstm checkpoint already"), "{e}");
}

#[test]
fn export_then_import_gives_the_same_model() {
    let dir = tmpdir("torch-roundtrip");
    let tensors = module("", 2, 5, 2, 4, 2);
    let path = dir.join("sd.safetensors");
    save(&path, &tensors, &values(&tensors, 6), Dtype::F32);
    let opts = ImportOptions {
        leaky_slope: Some(0.3),
        lstm_activation: Some(Activation::LeakyRelu),
        sample_rate: Some(8000),
        scale: Some(0.5),
        ..ImportOptions::default()
    };
    let (ck, _) = import(&path, &opts).unwrap();
    let exported = dir.join("torch.safetensors");
    export(&ck, &exported).unwrap();
    let st_bytes = std::fs::read(&exported).unwrap();
    let st = safetensors::SafeTensors::deserialize(&st_bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().cloned().collect();
    names.sort();
    assert!(
        names.contains(&"lstm.weight_ih_l1".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"head.2.weight".to_string()), "{names:?}");
    assert_eq!(torch_name("head.1.bias"), "head.2.bias");
    let (back, _) = import(&exported, &ImportOptions::default()).unwrap();
    assert_eq!(back.config, ck.config);
    assert_eq!(back.state.params, ck.state.params);
}

/// `predict --raw` writes what the float WAV holds before clipping, at the
/// model's rate, as .npy or raw f32; `import` and `export` through the binary.
#[test]
fn predict_raw_matches_the_float_wav_and_the_commands_run() {
    let dir = tmpdir("torch-cli");
    let clip = asset("orchestral_kaufman_heroes_rite_mono_22050.wav");
    let tensors = module("lstm.", 1, 8, 1, 4, 1);
    let sd = dir.join("sd.safetensors");
    save(&sd, &tensors, &values(&tensors, 7), Dtype::BF16);
    let ck = dir.join("ck.safetensors");
    let out = run(&[
        "import",
        s(&sd),
        "--sample-rate",
        "22050",
        "--scale",
        "0.2",
        "--out",
        s(&ck),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("head `head.0` 8→4, LeakyReLU(0.01), `head.2` 4→1"),
        "{}",
        text(&out.stdout)
    );
    let (wav, npy, f32s) = (dir.join("p.wav"), dir.join("p.npy"), dir.join("p.f32"));
    for raw in [&npy, &f32s] {
        let out = run(&[
            "predict",
            "-m",
            s(&ck),
            s(&clip),
            "--float",
            "--out",
            s(&wav),
            "--raw",
            s(raw),
            "--device",
            "cpu",
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let r = hound::WavReader::open(&wav).unwrap();
    let frames = r.duration() as usize;
    let w: Vec<f32> = r.into_samples::<f32>().map(|x| x.unwrap()).collect();
    let raw_f32: Vec<f32> = std::fs::read(&f32s)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let npy_bytes = std::fs::read(&npy).unwrap();
    assert_eq!(&npy_bytes[..6], b"\x93NUMPY");
    let header = u16::from_le_bytes([npy_bytes[8], npy_bytes[9]]) as usize;
    assert!(std::str::from_utf8(&npy_bytes[10..10 + header])
        .unwrap()
        .contains(&format!("({frames}, 1)")));
    assert_eq!(
        &npy_bytes[10 + header..],
        &std::fs::read(&f32s).unwrap()[..]
    );
    assert_eq!(raw_f32.len(), w.len());
    for (i, (&a, &b)) in raw_f32.iter().zip(&w).enumerate() {
        assert_eq!(a.clamp(-1.0, 1.0), b, "sample {i}");
    }
    let torch = dir.join("torch.safetensors");
    let out = run(&["export", s(&ck), "--out", s(&torch)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(torch.exists());
    // train --init takes the torch names too.
    let trained = dir.join("t.safetensors");
    let train_init = |shape: &[&str]| {
        let mut args = vec!["train", s(&clip), "--init", s(&sd)];
        args.extend_from_slice(shape);
        args.extend_from_slice(&["--max-steps", "1", "--device", "cpu", "--out", s(&trained)]);
        run(&args)
    };
    let out = train_init(&[
        "--hidden",
        "8",
        "--head",
        "4",
        "--seq-len",
        "32",
        "--batch",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = train_init(&["--hidden", "9"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("holds a model of 1 inputs, 1 layer(s) of 8 units"),
        "{}",
        text(&out.stderr)
    );
}
