//! The options handle (gem_options_t) and the runner and progress callbacks.
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;

use gem_sys as sys;

use crate::error::{c_string, check, from_c_opt, Result};
use crate::Opt;

type RunnerFn = dyn Fn(i32, i64) -> f64 + Send + Sync;
type ProgressFn = dyn Fn(&str, f64, f64) -> bool + Send + Sync;

// Boxed once more so that the C `void *user` is a thin pointer.
struct Runner(Box<RunnerFn>);
struct Progress(Box<ProgressFn>);

/// Options: one handle holding every setting, typed setters per gem.h (`Opt` documents each
/// key's type). Setting a key with the wrong type or out of its range is an
/// `Status::InvalidArgument` error and leaves the option unchanged.
pub struct Options {
    raw: *mut sys::gem_options_t,
    // The C handle points into these: they live as long as this handle (and its clones).
    runner: Option<Arc<Runner>>,
    progress: Option<Arc<Progress>>,
}

// SAFETY: libgem has no global mutable state; const functions may run on one handle from many
// threads, and mutation needs &mut. The callbacks are Send + Sync.
unsafe impl Send for Options {}
unsafe impl Sync for Options {}

pub(crate) fn opt_ptr(o: Option<&Options>) -> *const sys::gem_options_t {
    o.map_or(ptr::null(), |o| o.raw as *const _)
}

unsafe extern "C" fn runner_trampoline(user: *mut c_void, device: c_int, tokens: i64) -> f64 {
    let r = &*(user as *const Runner);
    // A panic must not unwind into C: it becomes the runner's failure value.
    panic::catch_unwind(AssertUnwindSafe(|| (r.0)(device as i32, tokens))).unwrap_or(-1.0)
}

unsafe extern "C" fn progress_trampoline(user: *mut c_void, what: *const c_char, done: f64,
                                         total: f64) -> c_int {
    let p = &*(user as *const Progress);
    let what = from_c_opt(what).unwrap_or_default();
    match panic::catch_unwind(AssertUnwindSafe(|| (p.0)(&what, done, total))) {
        Ok(true) | Err(_) => 1, // cancel, also when the callback panicked
        Ok(false) => 0,
    }
}

impl Options {
    /// Every option at its default.
    pub fn new() -> Result<Options> {
        let mut raw = ptr::null_mut();
        // SAFETY: raw is a valid out pointer.
        check(unsafe { sys::gem_options_create(&mut raw) })?;
        Ok(Options { raw, runner: None, progress: None })
    }

    /// Deep copy, callbacks included.
    pub fn try_clone(&self) -> Result<Options> {
        let mut raw = ptr::null_mut();
        // SAFETY: self.raw is live; raw is a valid out pointer.
        check(unsafe { sys::gem_options_clone(self.raw, &mut raw) })?;
        Ok(Options { raw, runner: self.runner.clone(), progress: self.progress.clone() })
    }

    /// The C handle, for calls through gem-sys. It stays owned by self.
    pub fn as_ptr(&self) -> *const sys::gem_options_t {
        self.raw
    }

    pub fn set_int(&mut self, key: Opt, value: i64) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::gem_options_set_int(self.raw, key.raw(), value) })
    }

    pub fn set_double(&mut self, key: Opt, value: f64) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::gem_options_set_double(self.raw, key.raw(), value) })
    }

    /// A string option; None resets it to the default.
    pub fn set_string(&mut self, key: Opt, value: Option<&str>) -> Result<()> {
        let c = match value {
            Some(s) => Some(c_string(s, key.as_str())?),
            None => None,
        };
        let p = c.as_ref().map_or(ptr::null(), |c| c.as_ptr());
        // SAFETY: live handle; p is NULL or NUL-terminated (the library copies it).
        check(unsafe { sys::gem_options_set_string(self.raw, key.raw(), p) })
    }

    /// An int array option; an empty slice resets it to the default.
    pub fn set_int_array(&mut self, key: Opt, values: &[i64]) -> Result<()> {
        // SAFETY: live handle; the slice is valid for values.len() items (copied).
        check(unsafe {
            sys::gem_options_set_int_array(self.raw, key.raw(), values.as_ptr(), values.len())
        })
    }

    /// A double array option; an empty slice resets it to the default.
    pub fn set_double_array(&mut self, key: Opt, values: &[f64]) -> Result<()> {
        // SAFETY: as set_int_array.
        check(unsafe {
            sys::gem_options_set_double_array(self.raw, key.raw(), values.as_ptr(), values.len())
        })
    }

    pub fn get_int(&self, key: Opt) -> Result<i64> {
        let mut v = 0i64;
        // SAFETY: live handle, valid out pointer.
        check(unsafe { sys::gem_options_get_int(self.raw, key.raw(), &mut v) })?;
        Ok(v)
    }

    /// Any numeric option (an int option reads as double too).
    pub fn get_double(&self, key: Opt) -> Result<f64> {
        let mut v = 0f64;
        // SAFETY: live handle, valid out pointer.
        check(unsafe { sys::gem_options_get_double(self.raw, key.raw(), &mut v) })?;
        Ok(v)
    }

    /// A string option; None when it was never set (the library's default applies).
    pub fn get_string(&self, key: Opt) -> Result<Option<String>> {
        let mut v: *const c_char = ptr::null();
        // SAFETY: live handle; the string is owned by the handle and copied at once.
        check(unsafe { sys::gem_options_get_string(self.raw, key.raw(), &mut v) })?;
        Ok(unsafe { from_c_opt(v) })
    }

    pub fn get_int_array(&self, key: Opt) -> Result<Vec<i64>> {
        let mut n = 0usize;
        // SAFETY: cap 0 with NULL values only asks for the length.
        check(unsafe {
            sys::gem_options_get_int_array(self.raw, key.raw(), ptr::null_mut(), 0, &mut n)
        })?;
        let mut v = vec![0i64; n];
        // SAFETY: v has room for n values.
        check(unsafe {
            sys::gem_options_get_int_array(self.raw, key.raw(), v.as_mut_ptr(), n, &mut n)
        })?;
        v.truncate(n);
        Ok(v)
    }

    pub fn get_double_array(&self, key: Opt) -> Result<Vec<f64>> {
        let mut n = 0usize;
        // SAFETY: as get_int_array.
        check(unsafe {
            sys::gem_options_get_double_array(self.raw, key.raw(), ptr::null_mut(), 0, &mut n)
        })?;
        let mut v = vec![0f64; n];
        check(unsafe {
            sys::gem_options_get_double_array(self.raw, key.raw(), v.as_mut_ptr(), n, &mut n)
        })?;
        v.truncate(n);
        Ok(v)
    }

    /// The runner of the callback backend: `runner(device, tokens)` returns the microseconds
    /// one expert takes on `tokens` tokens, negative on failure. It is called from one thread
    /// per device at once. A panic inside it counts as a failure.
    pub fn set_runner<F>(&mut self, num_devices: i32, runner: F) -> Result<()>
    where
        F: Fn(i32, i64) -> f64 + Send + Sync + 'static,
    {
        let r = Arc::new(Runner(Box::new(runner)));
        let user = Arc::as_ptr(&r) as *mut c_void;
        // SAFETY: user points into r, which self keeps alive while the handle may call it.
        check(unsafe {
            sys::gem_options_set_runner(self.raw, Some(runner_trampoline), user, num_devices)
        })?;
        self.runner = Some(r);
        Ok(())
    }

    /// Removes the runner.
    pub fn clear_runner(&mut self) -> Result<()> {
        // SAFETY: a NULL runner is allowed.
        check(unsafe { sys::gem_options_set_runner(self.raw, None, ptr::null_mut(), 0) })?;
        self.runner = None;
        Ok(())
    }

    /// Progress of long operations: `progress(what, done, total)`; return true to cancel (the
    /// call then fails with `Status::Cancelled`). A panic inside it cancels too.
    pub fn set_progress<F>(&mut self, progress: F) -> Result<()>
    where
        F: Fn(&str, f64, f64) -> bool + Send + Sync + 'static,
    {
        let p = Arc::new(Progress(Box::new(progress)));
        let user = Arc::as_ptr(&p) as *mut c_void;
        // SAFETY: as set_runner.
        check(unsafe { sys::gem_options_set_progress(self.raw, Some(progress_trampoline), user) })?;
        self.progress = Some(p);
        Ok(())
    }

    /// Removes the progress callback.
    pub fn clear_progress(&mut self) -> Result<()> {
        // SAFETY: a NULL callback is allowed.
        check(unsafe { sys::gem_options_set_progress(self.raw, None, ptr::null_mut()) })?;
        self.progress = None;
        Ok(())
    }
}

impl Drop for Options {
    fn drop(&mut self) {
        // SAFETY: raw is owned and freed once; NULL is accepted too.
        unsafe { sys::gem_options_destroy(self.raw) }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options").field("raw", &self.raw).finish()
    }
}
