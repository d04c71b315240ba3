//! A raw pointer the tasks of one product or timestep share.

/// Raw pointer that may cross threads: each holder writes a part of the
/// buffer no other task touches (the caller guarantees it).
#[derive(Clone, Copy)]
pub struct SendPtr<T>(pub *mut T);
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so a closure captures the `Send` wrapper, not the field).
    #[inline(always)]
    pub fn get(self) -> *mut T {
        self.0
    }
}
