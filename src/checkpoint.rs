//! Checkpoints: one safetensors file holding the whole training state.
//!
//! Tensors (all f32, little-endian, as safetensors stores them):
//! - every parameter under its PyTorch name (`weight_ih_l0`, ..., `head.0.weight`,
//!   see `model`), so the weights load into `nn.LSTM`/`nn.Linear` as they are;
//! - `adam.m.<name>` and `adam.v.<name>`: Adam's moments;
//! - `carry.h`, `carry.c` `[L, B, H]`: the recurrent state carried between
//!   stateful training steps (only when there is one).
//!
//! Metadata: one key, `wavelstm`, holding a JSON object (one key, because
//! safetensors writes its metadata map in hash order and a checkpoint must be
//! bit-reproducible): `format` = `wavelstm-checkpoint-1`; `config`, the
//! [`RunConfig`]; `step` (Adam updates so far); `cursor`, the data cursor
//! (epoch, step within it, global step) — the shuffling RNG of every epoch is
//! derived from `config.seed` and the epoch number alone, so seed and cursor
//! are the whole RNG state; `history`, the epoch reports.
//!
//! Files are written atomically: a crash mid-write leaves the previous
//! checkpoint as it was.
//!
//! Nothing non-finite is ever written: [`save`] refuses a state with a NaN
//! or an infinity in any tensor, or a metadata number that JSON cannot hold
//! (serde writes NaN and ±inf as `null`), and names the tensor or the field.
//! [`load`] makes the same checks, so a file damaged or written elsewhere is
//! refused with the culprit named instead of poisoning a run.

use crate::atomic::write_atomic;
use crate::engine::TrainState;
use crate::epoch_report::EpochReport;
use crate::error::{Error, Result};
use crate::model::ModelConfig;
use crate::run_config::RunConfig;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

pub const FORMAT: &str = "wavelstm-checkpoint-1";
pub const META_KEY: &str = "wavelstm";

#[derive(Serialize, Deserialize)]
struct Meta {
    format: String,
    config: RunConfig,
    step: u64,
    cursor: Cursor,
    history: Vec<EpochReport>,
}

/// Where in the data a run stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Completed epochs.
    pub epoch: u64,
    /// Steps done in the current epoch.
    pub step_in_epoch: u64,
    pub global_step: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub config: RunConfig,
    pub state: TrainState,
    pub cursor: Cursor,
    pub history: Vec<EpochReport>,
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The first non-finite value of `v`, as "index i is NaN".
fn non_finite(v: &[f32]) -> Option<String> {
    let i = v.iter().position(|x| !x.is_finite())?;
    Some(format!("index {i} is {}", v[i]))
}

/// The first `null` in `v`, as a path like `history[2].valid.gain_db`.
fn find_null(v: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::Null => Some(at.to_string()),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| find_null(x, &format!("{at}[{i}]"))),
        Value::Object(o) => o.iter().find_map(|(k, x)| {
            find_null(
                x,
                &if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                },
            )
        }),
        _ => None,
    }
}

/// The metadata's numbers that a run cannot do without: a normalization
/// scale must be a positive number.
fn check_config(cfg: &RunConfig) -> std::result::Result<(), String> {
    let positive = |x: f32| x.is_finite() && x > 0.0;
    if !positive(cfg.scale) {
        return Err(format!(
            "`config.scale` is {}, not a positive number",
            cfg.scale
        ));
    }
    if !positive(cfg.output_scale()) {
        return Err(format!(
            "`config.residual.scale` is {}, not a positive number",
            cfg.output_scale()
        ));
    }
    Ok(())
}

pub fn save(path: &Path, ck: &Checkpoint) -> Result<()> {
    let cfg = &ck.config;
    let layout = cfg.model.layout();
    let refuse = |what: String| {
        Error::file(
            path,
            format!("refusing to write a checkpoint with {what} (the previous file is kept)"),
        )
    };
    let s = &ck.state;
    if [&s.params, &s.adam_m, &s.adam_v]
        .iter()
        .any(|v| v.len() != layout.total)
    {
        return Err(refuse("a state that does not fit the model".into()));
    }
    for e in &layout.entries {
        let r = e.offset..e.offset + e.len;
        for (prefix, v) in [
            ("", &s.params),
            ("adam.m.", &s.adam_m),
            ("adam.v.", &s.adam_v),
        ] {
            if let Some(bad) = non_finite(&v[r.clone()]) {
                return Err(refuse(format!(
                    "a non-finite value: tensor `{prefix}{}` {bad}",
                    e.name
                )));
            }
        }
    }
    for (name, v) in [("carry.h", &s.carry_h), ("carry.c", &s.carry_c)] {
        if let Some(bad) = non_finite(v) {
            return Err(refuse(format!("a non-finite value: tensor `{name}` {bad}")));
        }
    }
    check_config(cfg).map_err(refuse)?;
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for e in &layout.entries {
        let r = e.offset..e.offset + e.len;
        tensors.push((
            e.name.clone(),
            e.shape.clone(),
            bytes(&ck.state.params[r.clone()]),
        ));
        tensors.push((
            format!("adam.m.{}", e.name),
            e.shape.clone(),
            bytes(&ck.state.adam_m[r.clone()]),
        ));
        tensors.push((
            format!("adam.v.{}", e.name),
            e.shape.clone(),
            bytes(&ck.state.adam_v[r]),
        ));
    }
    if !ck.state.carry_h.is_empty() {
        let (l, h) = (cfg.model.layers, cfg.model.hidden);
        let shape = vec![l, ck.state.carry_h.len() / (l * h), h];
        tensors.push(("carry.h".into(), shape.clone(), bytes(&ck.state.carry_h)));
        tensors.push(("carry.c".into(), shape, bytes(&ck.state.carry_c)));
    }
    let meta = Meta {
        format: FORMAT.to_string(),
        config: cfg.clone(),
        step: ck.state.step,
        cursor: ck.cursor,
        history: ck.history.clone(),
    };
    let value = serde_json::to_value(&meta).map_err(|e| Error::Other(e.to_string()))?;
    if let Some(field) = find_null(&value, "") {
        return Err(refuse(format!(
            "a non-finite number in its metadata: `{field}`"
        )));
    }
    let meta = HashMap::from([(
        META_KEY.to_string(),
        serde_json::to_string(&meta).map_err(|e| Error::Other(e.to_string()))?,
    )]);
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, s, b)| {
            Ok((
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b)
                    .map_err(|e| Error::Other(e.to_string()))?,
            ))
        })
        .collect::<Result<_>>()?;
    let buf = safetensors::tensor::serialize(views, &Some(meta))
        .map_err(|e| Error::file(path, format!("cannot serialize checkpoint: {e}")))?;
    write_atomic(path, |w| {
        w.write_all(&buf)
            .map_err(|e| Error::file(path, format!("cannot write: {e}")))
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    if path.is_dir() {
        return Err(Error::file(path, "is a directory, not a checkpoint"));
    }
    std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))
}

fn parse<'a>(path: &Path, buf: &'a [u8]) -> Result<(SafeTensors<'a>, HashMap<String, String>)> {
    let bad = |e: String| Error::file(path, format!("not a safetensors file ({e})"));
    let (_, meta) = SafeTensors::read_metadata(buf).map_err(|e| bad(e.to_string()))?;
    let st = SafeTensors::deserialize(buf).map_err(|e| bad(e.to_string()))?;
    Ok((st, meta.metadata().clone().unwrap_or_default()))
}

/// Read tensor `name` as f32 with the expected shape.
fn tensor(path: &Path, st: &SafeTensors, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let t = st
        .tensor(name)
        .map_err(|_| Error::file(path, format!("has no tensor `{name}`")))?;
    if t.dtype() != Dtype::F32 {
        return Err(Error::file(
            path,
            format!("tensor `{name}` is {:?}, expected F32", t.dtype()),
        ));
    }
    if t.shape() != shape {
        return Err(Error::file(
            path,
            format!(
                "tensor `{name}` has shape {:?}, the model needs {:?}",
                t.shape(),
                shape
            ),
        ));
    }
    let v: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::file(
            path,
            format!("tensor `{name}` holds a non-finite value at index {i}"),
        ));
    }
    Ok(v)
}

pub fn load(path: &Path) -> Result<Checkpoint> {
    let buf = read_file(path)?;
    let (st, meta) = parse(path, &buf)?;
    let raw = meta
        .get(META_KEY)
        .ok_or_else(|| Error::file(path, format!("is not a wavelstm checkpoint (no `{META_KEY}` metadata); --init reads bare weights")))?;
    let format: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| Error::file(path, format!("bad metadata: {e}")))?;
    if format.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(Error::file(
            path,
            format!("checkpoint format is not `{FORMAT}`"),
        ));
    }
    if let Some(field) = find_null(&format, "") {
        return Err(Error::file(
            path,
            format!("bad metadata: `{field}` is null where a number belongs (a non-finite value was saved)"),
        ));
    }
    let Meta {
        config,
        step,
        cursor,
        history,
        ..
    } = serde_json::from_str(raw).map_err(|e| Error::file(path, format!("bad metadata: {e}")))?;
    config
        .model
        .validate()
        .map_err(|e| Error::file(path, e.to_string()))?;
    check_config(&config).map_err(|p| Error::file(path, format!("bad metadata: {p}")))?;
    let layout = config.model.layout();
    let mut state = TrainState {
        params: vec![0.0; layout.total],
        adam_m: vec![0.0; layout.total],
        adam_v: vec![0.0; layout.total],
        step,
        carry_h: Vec::new(),
        carry_c: Vec::new(),
    };
    for e in &layout.entries {
        let r = e.offset..e.offset + e.len;
        state.params[r.clone()].copy_from_slice(&tensor(path, &st, &e.name, &e.shape)?);
        state.adam_m[r.clone()].copy_from_slice(&tensor(
            path,
            &st,
            &format!("adam.m.{}", e.name),
            &e.shape,
        )?);
        state.adam_v[r].copy_from_slice(&tensor(
            path,
            &st,
            &format!("adam.v.{}", e.name),
            &e.shape,
        )?);
    }
    if let Ok(t) = st.tensor("carry.h") {
        let shape = t.shape().to_vec();
        state.carry_h = tensor(path, &st, "carry.h", &shape)?;
        state.carry_c = tensor(path, &st, "carry.c", &shape)?;
    }
    Ok(Checkpoint {
        config,
        state,
        cursor,
        history,
    })
}

/// Only the weights, by name, for `--init`: from a wavelstm checkpoint or any
/// safetensors file that uses the same names and shapes (e.g. saved from PyTorch).
pub fn load_weights(path: &Path, model: &ModelConfig) -> Result<Vec<f32>> {
    let buf = read_file(path)?;
    let (st, _) = parse(path, &buf)?;
    let layout = model.layout();
    let mut params = vec![0.0; layout.total];
    for e in &layout.entries {
        params[e.offset..e.offset + e.len].copy_from_slice(&tensor(path, &st, &e.name, &e.shape)?);
    }
    Ok(params)
}
