//! Least squares the long way, for the predictors' references: normal
//! equations summed row by row and solved by Gaussian elimination.

/// Add one row `h` with target `y` and weight `w` to the normal equations
/// `ata·a = atb`: `ata += w·h·hᵀ`, `atb += w·h·y`.
pub fn add_row(ata: &mut [Vec<f64>], atb: &mut [f64], h: &[f64], y: f64, w: f64) {
    for i in 0..h.len() {
        atb[i] += w * h[i] * y;
        for j in 0..h.len() {
            ata[i][j] += w * h[i] * h[j];
        }
    }
}

/// Solve `A·a = b` (A `p × p`, rows) by Gaussian elimination with partial pivoting.
pub fn gauss(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let p = b.len();
    for col in 0..p {
        let piv = (col..p)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap();
        a.swap(col, piv);
        b.swap(col, piv);
        let pivot = a[col].clone();
        for r in col + 1..p {
            let f = a[r][col] / pivot[col];
            for (v, pv) in a[r].iter_mut().zip(&pivot).skip(col) {
                *v -= f * pv;
            }
            b[r] -= f * b[col];
        }
    }
    let mut out = vec![0.0; p];
    for i in (0..p).rev() {
        let s: f64 = (i + 1..p).map(|j| a[i][j] * out[j]).sum();
        out[i] = (b[i] - s) / a[i][i];
    }
    out
}
