//! Exact-enough references for the products the kernels compute, and the
//! operand layouts they are checked on.

use wavelstm::cpu::matmul::Op;

/// Every pair of operand layouts a product `op(A)·op(B)` takes.
pub const EVERY_OP_PAIR: [(Op, Op); 4] = [
    (Op::N, Op::N),
    (Op::N, Op::T),
    (Op::T, Op::N),
    (Op::T, Op::T),
];

/// `start + Σ aₚ·bₚ` over `p < k`, summed in f64, and `|start| + Σ |aₚ·bₚ|`,
/// the scale a kernel's rounding error is judged by; `pair(p)` is `(aₚ, bₚ)`.
pub fn dot_f64(start: f64, k: usize, pair: impl Fn(usize) -> (f32, f32)) -> (f64, f64) {
    let (mut sum, mut scale) = (start, start.abs());
    for p in 0..k {
        let (a, b) = pair(p);
        let t = f64::from(a) * f64::from(b);
        sum += t;
        scale += t.abs();
    }
    (sum, scale)
}
