//! A safetensors file of float tensors, every dtype read as f32.
//!
//! safetensors stores each tensor as raw little-endian bytes of its dtype;
//! F16 and BF16 widen to f32 exactly, F64 rounds to nearest.

use crate::error::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

/// One tensor, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The tensors of a file, sorted by name, and its metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct StateDict {
    pub tensors: Vec<Tensor>,
    pub metadata: HashMap<String, String>,
}

impl StateDict {
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// `bytes` of dtype `dtype` as f32, or None for a dtype that is not float.
fn to_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

/// Read every tensor of the safetensors file at `path` as f32. Refuses a
/// tensor that is not float or holds a value that is not finite (in f32:
/// an f64 beyond f32's range is refused too).
pub fn read(path: &Path) -> Result<StateDict> {
    if path.is_dir() {
        return Err(Error::file(path, "is a directory, not a state dict"));
    }
    let buf = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    let bad = |e: String| Error::file(path, format!("not a safetensors file ({e})"));
    let (_, meta) = SafeTensors::read_metadata(&buf).map_err(|e| bad(e.to_string()))?;
    let st = SafeTensors::deserialize(&buf).map_err(|e| bad(e.to_string()))?;
    let mut tensors = Vec::new();
    for (name, view) in st.tensors() {
        let data = to_f32(view.dtype(), view.data()).ok_or_else(|| {
            Error::file(
                path,
                format!(
                    "tensor `{name}` is {:?}; weights must be F16, BF16, F32 or F64",
                    view.dtype()
                ),
            )
        })?;
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(Error::file(
                path,
                format!("tensor `{name}` holds a value that is not finite in f32 at index {i}"),
            ));
        }
        tensors.push(Tensor {
            name,
            shape: view.shape().to_vec(),
            data,
        });
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(StateDict {
        tensors,
        metadata: meta.metadata().clone().unwrap_or_default(),
    })
}
