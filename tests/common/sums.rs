//! Exact-enough references for the products the kernels compute.

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
