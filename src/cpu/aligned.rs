//! A buffer of floats whose first value sits on a 64-byte boundary.
//!
//! Why: a vector load that straddles two cache lines costs two loads. The
//! allocator only promises the element's own alignment (large blocks come
//! back 16 bytes past a page boundary), so a row of 257 `f32`, or a 64-byte
//! load 16 bytes into a line, splits on every other (AVX2) or every
//! (AVX-512) load. Measured on one core streaming B panels through the
//! register tile: AVX2 at 16 bytes off a line runs 17 % slower than on it.
//! A streaming kernel whose operands live in one of these buffers, rows a
//! multiple of 64 bytes apart, never splits a load.

use std::ops::{Deref, DerefMut};

/// Bytes every buffer's start is a multiple of.
const ALIGN_BYTES: usize = 64;
/// `f32` values per 64 bytes: the row stride granularity that keeps every row aligned.
pub const ALIGN_F32: usize = ALIGN_BYTES / std::mem::size_of::<f32>();

/// `len` `f32` rounded up to whole 64-byte lines.
pub fn aligned_len(len: usize) -> usize {
    len.next_multiple_of(ALIGN_F32)
}

/// `len` values of `T` (`f32` or `f64`), the first 64-byte aligned.
pub struct AlignedVec<T> {
    buf: Vec<T>,
    start: usize,
    len: usize,
}

impl<T> AlignedVec<T> {
    /// Empty (allocates nothing).
    pub const fn new() -> Self {
        AlignedVec {
            buf: Vec::new(),
            start: 0,
            len: 0,
        }
    }
}

impl<T> Default for AlignedVec<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Elements of `T` per 64 bytes.
fn per_line<T>() -> usize {
    let size = std::mem::size_of::<T>();
    assert!(
        size > 0 && ALIGN_BYTES.is_multiple_of(size),
        "AlignedVec of an odd-sized type"
    );
    ALIGN_BYTES / size
}

/// The index of `buf`'s first element on a 64-byte boundary.
fn first_aligned<T>(buf: &[T]) -> usize {
    let per = per_line::<T>();
    let misalign = (buf.as_ptr() as usize / std::mem::size_of::<T>()) % per;
    (per - misalign) % per
}

impl<T: Copy + Default> AlignedVec<T> {
    /// `len` zeros (`T::default()`), the first 64-byte aligned.
    pub fn zeroed(len: usize) -> Self {
        let buf = vec![T::default(); len + per_line::<T>() - 1];
        let start = first_aligned(&buf);
        AlignedVec { buf, start, len }
    }

    /// As `Vec::resize` with zeros: the first `min(len, old)` values are
    /// kept, any new ones are zero.
    pub fn resize(&mut self, len: usize) {
        if self.start + len <= self.buf.len() {
            let old = self.len;
            self.len = len;
            if len > old {
                self[old..].fill(T::default());
            }
        } else {
            let mut grown = Self::zeroed(len);
            grown[..self.len].copy_from_slice(self);
            *self = grown;
        }
    }
}

impl<T: Clone> Clone for AlignedVec<T> {
    fn clone(&self) -> Self {
        let Some(first) = self.first() else {
            return Self::new();
        };
        let mut buf = vec![first.clone(); self.len + per_line::<T>() - 1];
        let start = first_aligned(&buf);
        buf[start..start + self.len].clone_from_slice(self);
        AlignedVec {
            buf,
            start,
            len: self.len,
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for AlignedVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T> Deref for AlignedVec<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl<T> DerefMut for AlignedVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.start..self.start + self.len]
    }
}
