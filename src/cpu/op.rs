//! How a product reads an operand, shared by the product (`cpu::matmul`)
//! and its packed kernels (`cpu::pack`).

/// Whether an operand is read as stored or transposed (see `cpu::matmul`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Use the stored matrix as it is.
    N,
    /// Use the stored matrix transposed.
    T,
}
