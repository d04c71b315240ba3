//! A zeroed `f32` buffer whose first value sits on a 64-byte boundary.
//!
//! Why: a vector load that straddles two cache lines costs two loads. The
//! allocator only promises `f32`'s own alignment (4 bytes; large blocks
//! come back 16 bytes past a page boundary), so a row of 257 values, or a
//! 64-byte load 16 bytes into a line, splits on every other (AVX2) or every
//! (AVX-512) load. A streaming product that keeps its rows a multiple of
//! [`ALIGN_F32`] values apart in one of these buffers never splits.

use std::ops::{Deref, DerefMut};

/// Values per 64 bytes: the row stride granularity that keeps every row aligned.
pub const ALIGN_F32: usize = 16;

/// `len` rounded up to whole 64-byte lines.
pub fn aligned_len(len: usize) -> usize {
    len.next_multiple_of(ALIGN_F32)
}

#[derive(Default)]
pub struct AlignedVec {
    buf: Vec<f32>,
    start: usize,
    len: usize,
}

impl AlignedVec {
    /// `len` zeros, the first 64-byte aligned.
    pub fn zeroed(len: usize) -> Self {
        let buf = vec![0.0f32; len + ALIGN_F32 - 1];
        let misalign = (buf.as_ptr() as usize / std::mem::size_of::<f32>()) % ALIGN_F32;
        let start = (ALIGN_F32 - misalign) % ALIGN_F32;
        AlignedVec { buf, start, len }
    }

    /// Make it `len` long: kept (values and all) when it already is, else
    /// a new zeroed buffer.
    pub fn resize_zeroed(&mut self, len: usize) {
        if self.len != len {
            *self = Self::zeroed(len);
        }
    }
}

impl Deref for AlignedVec {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl DerefMut for AlignedVec {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buf[self.start..self.start + self.len]
    }
}
