//! The one foreign call of haq: the fused fake-quantization kernel of `fake_quant.cpp`
//! (compiled by build.rs against libtorch's headers), and what it assumes of tch.
//!
//! tch's `Tensor` is a pointer to a heap-allocated `at::Tensor` (torch-sys's C wrapper
//! declares `typedef torch::Tensor *tensor`), so:
//! - `Tensor::as_ptr` is an `at::Tensor*` the kernel may read for as long as the Rust
//!   tensor is alive, which a borrow for the call guarantees;
//! - `Tensor::from_ptr` takes ownership of an `at::Tensor*` and frees it with `delete` on
//!   drop (torch-sys's `at_free`), so the kernel must return `new at::Tensor(...)`, made by
//!   the same C++ runtime and libtorch as tch's wrapper (build.rs uses the same headers,
//!   ABI flag and libraries).

use std::ffi::{c_char, c_int, c_void, CStr};

use tch::Tensor;

extern "C" {
    /// A new tensor the caller owns, or null with the error written to `err` (at most
    /// `err_len` bytes, NUL-terminated).
    fn haq_fake_quantize(
        x: *const c_void,
        clip: *const c_void,
        c: f64,
        levels: f64,
        signed: c_int,
        binary: c_int,
        err: *mut c_char,
        err_len: usize,
    ) -> *mut c_void;
}

/// [`super::linear::fake_quantize`] of a float CPU tensor (the caller checks both), with the
/// clip gradient when `clip` requires grad.
pub(super) fn fake_quantize(
    x: &Tensor,
    clip: &Tensor,
    c: f64,
    levels: f64,
    signed: bool,
    binary: bool,
) -> Tensor {
    let mut err = [0 as c_char; 512];
    // SAFETY: `x` and `clip` are borrowed, so their `at::Tensor`s live through the call,
    // and `err` is a writable buffer of the length passed (the module's doc says why these
    // pointers are what the kernel reads).
    let q = unsafe {
        haq_fake_quantize(
            x.as_ptr().cast(),
            clip.as_ptr().cast(),
            c,
            levels,
            c_int::from(signed),
            c_int::from(binary),
            err.as_mut_ptr(),
            err.len(),
        )
    };
    if q.is_null() {
        // Only a broken invariant gets here (the caller checked for a float CPU tensor),
        // so it panics as tch's own infallible ops do.
        // SAFETY: on failure the kernel wrote a NUL-terminated message within `err`.
        let message = unsafe { CStr::from_ptr(err.as_ptr()) };
        panic!("{}", message.to_string_lossy());
    }
    // SAFETY: a non-null result is a `new at::Tensor` that nothing else owns, which is
    // what `from_ptr` takes ownership of.
    unsafe { Tensor::from_ptr(q.cast()) }
}
