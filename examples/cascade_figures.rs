//! Prediction gain and bits per sample of LPC-32, EWLS alone and the
//! cascade on clips (mono mixdown, at the clip's own rate), with the
//! cascade's settings given on the command line, and how fast it ran.
//!
//! ```text
//! cargo run --release --example cascade_figures -- [--train] [--mix sum|sign:STEP|ls:LAMBDA:RIDGE] [--bias R]
//!     [--lambda L] [--order P] [--every N] [--stages T:MU,T:MU,...] CLIP...
//! ```
//! By default the last 10 % of each clip is scored (what `eval` scores).
//! `--train` scores the first 90 % instead, the part a setting may be chosen
//! on: the defaults in `cascade` were picked that way. Every predictor runs
//! causally from the clip's first frame either way.

use std::ops::Range;
use std::time::Instant;
use wavelstm::audio::{self, ChannelMode};
use wavelstm::cascade::{self, CascadeConfig, MixRule, NlmsConfig};
use wavelstm::codelength::residual_bits;
use wavelstm::dataset::valid_frames;
use wavelstm::lpc::{self, LpcConfig};
use wavelstm::metrics::score;

fn figures(x: &[f32], pos: Range<usize>, pred: &[f32]) -> (f64, f64) {
    let gain = score(pred, x, 1, pos.clone(), 1.0).gain_db;
    let target: Vec<f64> = x[pos.start + 1..pos.end + 1]
        .iter()
        .map(|&v| v as f64)
        .collect();
    let p: Vec<f64> = pred.iter().map(|&v| v as f64).collect();
    (gain, residual_bits(&target, &p, 1))
}

fn main() {
    let mut cfg = CascadeConfig::default();
    let mut train = false;
    let mut clips = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().expect("a value after the flag");
        match a.as_str() {
            "--train" => train = true,
            "--mix" => {
                let v = val();
                let f: Vec<f64> = v.split(':').skip(1).map(|s| s.parse().unwrap()).collect();
                cfg.mix.rule = match v.split(':').next().unwrap() {
                    "sum" => MixRule::Sum,
                    "sign" => MixRule::SignSign { step: f[0] },
                    "ls" => MixRule::LeastSquares {
                        lambda: f[0],
                        ridge: f[1],
                    },
                    _ => panic!("--mix sum | sign:STEP | ls:LAMBDA:RIDGE"),
                }
            }
            "--bias" => cfg.mix.bias_rate = val().parse().unwrap(),
            "--lambda" => cfg.ewls.lambda = val().parse().unwrap(),
            "--order" => cfg.ewls.order = val().parse().unwrap(),
            "--every" => cfg.ewls.every = val().parse().unwrap(),
            "--ridge" => cfg.ewls.ridge = val().parse().unwrap(),
            "--stages" => {
                let v = val();
                cfg.stages = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        let (t, mu) = s.split_once(':').expect("TAPS:STEP");
                        NlmsConfig {
                            taps: t.parse().unwrap(),
                            step: mu.parse().unwrap(),
                        }
                    })
                    .collect()
            }
            _ => clips.push(a),
        }
    }
    println!("cascade: {cfg:?}");
    let mut ewls_cfg = CascadeConfig::ewls_only();
    ewls_cfg.ewls = cfg.ewls;
    for clip in &clips {
        let a = audio::load(clip.as_ref(), ChannelMode::Mono, None).expect("a clip");
        let n = a.frames();
        let x = &a.samples;
        let valid = valid_frames(n, 0.1);
        let pos = if train {
            lpc::ORDER..n - valid - 1
        } else {
            n - valid - 1..n - 1
        };
        let lpc_pred = lpc::lpc(x, 1, pos.clone(), &LpcConfig::standard(a.sample_rate));
        let ewls_pred = cascade::predict(x, 1, pos.clone(), &ewls_cfg);
        let t0 = Instant::now();
        let casc_pred = cascade::predict(x, 1, pos.clone(), &cfg);
        let secs = t0.elapsed().as_secs_f64();
        let name = std::path::Path::new(clip)
            .file_name()
            .unwrap()
            .to_string_lossy();
        let (lg, lb) = figures(x, pos.clone(), &lpc_pred);
        let (eg, eb) = figures(x, pos.clone(), &ewls_pred);
        let (cg, cb) = figures(x, pos.clone(), &casc_pred);
        println!(
            "{name}: {} LPC-32 {lg:.2} dB {lb:.3} b/s | EWLS {eg:.2} dB {eb:.3} b/s | cascade {cg:.2} dB {cb:.3} b/s | {:.1}x real time",
            if train { "first 90%" } else { "last 10%" },
            pos.end as f64 / a.sample_rate as f64 / secs
        );
    }
}
