//! Which tensor of a torch state dict is which wavelstm parameter, and the
//! model's shape as far as the shapes tell it.
//!
//! - The LSTM: tensors named `weight_ih_l{k}`, `weight_hh_l{k}`,
//!   `bias_ih_l{k}`, `bias_hh_l{k}` under one module path, whatever it is
//!   (`lstm.`, `rnn.`, `encoder.lstm.`, none). An `nn.LSTM(bias=False)` has
//!   no biases: they import as zeros. A bidirectional LSTM (`_reverse`) or
//!   one with `proj_size` (`weight_hr_l{k}`) has no wavelstm equivalent.
//! - The head: every other tensor, grouped by module path into `nn.Linear`s
//!   (`weight` `[out, in]`, optional `bias` `[out]`), taken in natural order
//!   of their paths (`head.0 < head.2 < head.10`, `fc1 < fc2`), so the
//!   numbering of an `nn.Sequential` with activations between its linear
//!   layers (`head.0`, `head.2`, ...) maps as it is. Their widths must chain
//!   from `hidden`.
//!
//! Anything else (another module, a buffer, a GRU's 3H rows) is refused with
//! a message listing what the file holds.

use super::tensors::{StateDict, Tensor};
use crate::error::{Error, Result};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::Path;

/// The model's shape from the state dict alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shapes {
    /// Inputs per timestep of the first layer (`frame · channels`).
    pub input: usize,
    pub hidden: usize,
    pub layers: usize,
    /// Output width of every dense layer, the last one's included.
    pub widths: Vec<usize>,
}

/// A state dict mapped onto wavelstm's parameter names (`model` module's
/// layout): every tensor found, under its wavelstm name.
#[derive(Clone, Debug)]
pub struct Mapped {
    pub shapes: Shapes,
    /// Module path of the LSTM ("" for bare names), and of each dense layer.
    pub lstm_path: String,
    pub dense_paths: Vec<String>,
    /// By wavelstm name; LSTM biases are absent when the LSTM has none.
    pub tensors: BTreeMap<String, Tensor>,
}

/// `name` split into its module path and its last component.
fn split(name: &str) -> (&str, &str) {
    match name.rsplit_once('.') {
        Some((path, leaf)) => (path, leaf),
        None => ("", name),
    }
}

/// An LSTM parameter's leaf: its kind (`weight_ih`...) and layer.
fn lstm_leaf(leaf: &str) -> Option<(&str, &str)> {
    [
        "weight_ih_l",
        "weight_hh_l",
        "bias_ih_l",
        "bias_hh_l",
        "weight_hr_l",
    ]
    .into_iter()
    .find_map(|p| leaf.strip_prefix(p).map(|rest| (&p[..p.len() - 2], rest)))
}

/// Natural order: runs of digits compare as numbers, so `head.10` follows `head.2`.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    fn tokens(s: &str) -> Vec<(u8, u128, String)> {
        let mut out = Vec::new();
        let mut chars = s.chars().peekable();
        while let Some(&c) = chars.peek() {
            let digit = c.is_ascii_digit();
            let mut run = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_digit() != digit {
                    break;
                }
                run.push(c);
                chars.next();
            }
            let n = if digit {
                run.parse().unwrap_or(u128::MAX)
            } else {
                0
            };
            out.push((u8::from(!digit), n, run));
        }
        out
    }
    tokens(a).cmp(&tokens(b))
}

/// What the file holds, for a refusal: every tensor with its shape.
pub fn listing(sd: &StateDict) -> String {
    const MAX: usize = 40;
    let mut s: Vec<String> = sd
        .tensors
        .iter()
        .take(MAX)
        .map(|t| format!("{} {:?}", t.name, t.shape))
        .collect();
    if sd.tensors.len() > MAX {
        s.push(format!("and {} more", sd.tensors.len() - MAX));
    }
    if s.is_empty() {
        "no tensors".into()
    } else {
        s.join(", ")
    }
}

/// Map the tensors of `sd` (read from `path`) onto wavelstm's names.
pub fn map(path: &Path, sd: &StateDict) -> Result<Mapped> {
    let refuse = |why: String| {
        Error::file(
            path,
            format!(
                "does not map to wavelstm's model: {why}; the file holds: {}",
                listing(sd)
            ),
        )
    };
    // The LSTM's tensors, by (kind, layer).
    let mut lstm: BTreeMap<(String, usize), &Tensor> = BTreeMap::new();
    let mut lstm_paths: Vec<&str> = Vec::new();
    let mut rest: Vec<&Tensor> = Vec::new();
    for t in &sd.tensors {
        let (p, leaf) = split(&t.name);
        let Some((kind, layer)) = lstm_leaf(leaf) else {
            rest.push(t);
            continue;
        };
        if layer.ends_with("_reverse") {
            return Err(refuse(format!(
                "`{}` belongs to a bidirectional LSTM, which cannot predict a next sample",
                t.name
            )));
        }
        if kind == "weight_hr" {
            return Err(refuse(format!(
                "`{}` is an LSTM projection (proj_size), which wavelstm's LSTM has not",
                t.name
            )));
        }
        let Ok(layer) = layer.parse::<usize>() else {
            rest.push(t);
            continue;
        };
        if !lstm_paths.contains(&p) {
            lstm_paths.push(p);
        }
        lstm.insert((kind.to_string(), layer), t);
    }
    let lstm_path = match lstm_paths.as_slice() {
        [] => {
            return Err(refuse(
                "no LSTM weights (`weight_ih_l0`, `weight_hh_l0`)".into(),
            ))
        }
        [p] => p.to_string(),
        many => {
            return Err(refuse(format!(
                "LSTM weights under {} module paths ({}); wavelstm's model has one LSTM",
                many.len(),
                many.iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    };
    let layers = lstm.keys().map(|(_, l)| l + 1).max().unwrap_or(0);
    let full = |name: &str| {
        if lstm_path.is_empty() {
            name.to_string()
        } else {
            format!("{lstm_path}.{name}")
        }
    };
    let w_hh = lstm
        .get(&("weight_hh".into(), 0))
        .ok_or_else(|| refuse(format!("no `{}`", full("weight_hh_l0"))))?;
    let (hidden, input) = match (w_hh.shape.as_slice(), lstm.get(&("weight_ih".into(), 0))) {
        ([rows, h], Some(w_ih)) if *rows == 4 * h && *h > 0 => match w_ih.shape.as_slice() {
            [r, i] if r == rows && *i > 0 => (*h, *i),
            s => {
                return Err(refuse(format!(
                    "`{}` has shape {s:?}, expected [{rows}, inputs]",
                    w_ih.name
                )))
            }
        },
        (_, None) => return Err(refuse(format!("no `{}`", full("weight_ih_l0")))),
        (s, _) => {
            return Err(refuse(format!(
                "`{}` has shape {s:?}, not [4·hidden, hidden] (an LSTM has 4 gates; a GRU has 3)",
                w_hh.name
            )))
        }
    };
    let has_bias = lstm.contains_key(&("bias_ih".into(), 0));
    let mut tensors = BTreeMap::new();
    for k in 0..layers {
        let layer_input = if k == 0 { input } else { hidden };
        let mut want = vec![
            ("weight_ih", vec![4 * hidden, layer_input]),
            ("weight_hh", vec![4 * hidden, hidden]),
        ];
        if has_bias {
            want.push(("bias_ih", vec![4 * hidden]));
            want.push(("bias_hh", vec![4 * hidden]));
        }
        for (kind, shape) in want {
            let name = format!("{kind}_l{k}");
            let t = lstm
                .remove(&(kind.to_string(), k))
                .ok_or_else(|| refuse(format!("no `{}`", full(&name))))?;
            if t.shape != shape {
                return Err(refuse(format!(
                    "`{}` has shape {:?}, expected {shape:?}",
                    t.name, t.shape
                )));
            }
            tensors.insert(name, t.clone());
        }
    }
    if let Some(((_, _), t)) = lstm.into_iter().next() {
        return Err(refuse(format!(
            "`{}` does not fit an LSTM whose every layer {} biases",
            t.name,
            if has_bias { "has" } else { "lacks" }
        )));
    }
    // The head: every other tensor, one nn.Linear per module path.
    let mut modules: BTreeMap<&str, (Option<&Tensor>, Option<&Tensor>)> = BTreeMap::new();
    for t in rest {
        let (p, leaf) = split(&t.name);
        let slot = modules.entry(p).or_default();
        match leaf {
            "weight" if t.shape.len() == 2 => slot.0 = Some(t),
            "bias" if t.shape.len() == 1 => slot.1 = Some(t),
            _ => {
                return Err(refuse(format!(
                    "`{}` {:?} is neither an LSTM tensor nor a linear layer's weight [out, in] or bias [out]",
                    t.name, t.shape
                )))
            }
        }
    }
    let mut order: Vec<&str> = modules.keys().copied().collect();
    order.sort_by(|a, b| natural_cmp(a, b));
    if order.is_empty() {
        return Err(refuse(
            "no linear layer after the LSTM (wavelstm's model ends in one)".into(),
        ));
    }
    let mut widths = Vec::new();
    let mut dense_paths = Vec::new();
    let mut prev = hidden;
    for (j, p) in order.iter().enumerate() {
        let (w, b) = modules[p];
        let w = w.ok_or_else(|| refuse(format!("`{p}` has a bias but no weight")))?;
        let (out, inp) = (w.shape[0], w.shape[1]);
        if inp != prev || out == 0 {
            return Err(refuse(format!(
                "linear layer {j} (`{}`) is {:?}, but its input must be {prev} wide ({})",
                w.name,
                w.shape,
                if j == 0 {
                    "the LSTM's hidden size".to_string()
                } else {
                    format!("the output of `{}`", order[j - 1])
                }
            )));
        }
        let bias = match b {
            Some(b) if b.shape == [out] => b.clone(),
            Some(b) => {
                return Err(refuse(format!(
                    "`{}` has shape {:?}, expected [{out}]",
                    b.name, b.shape
                )))
            }
            // nn.Linear(bias=False).
            None => Tensor {
                name: format!("{p}.bias"),
                shape: vec![out],
                data: vec![0.0; out],
            },
        };
        tensors.insert(format!("head.{j}.weight"), w.clone());
        tensors.insert(format!("head.{j}.bias"), bias);
        widths.push(out);
        dense_paths.push(p.to_string());
        prev = out;
    }
    Ok(Mapped {
        shapes: Shapes {
            input,
            hidden,
            layers,
            widths,
        },
        lstm_path,
        dense_paths,
        tensors,
    })
}

#[cfg(test)]
mod tests {
    use super::natural_cmp;
    use std::cmp::Ordering;

    #[test]
    fn natural_order_compares_numbers_as_numbers() {
        assert_eq!(natural_cmp("head.2", "head.10"), Ordering::Less);
        assert_eq!(natural_cmp("fc1", "fc2"), Ordering::Less);
        assert_eq!(natural_cmp("decoder.0", "decoder.0"), Ordering::Equal);
        assert_eq!(natural_cmp("a.9.b", "a.10"), Ordering::Less);
    }
}
