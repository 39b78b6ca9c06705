//! Traces: tokens per expert per (step, layer) (SPEC 4).
use std::os::raw::c_char;
use std::path::Path;
use std::ptr;

use gem_sys as sys;

use crate::error::{c_path, check, invalid, take_c_string, to_i32, Result};
use crate::options::{opt_ptr, Options};
use crate::ImportFormat;

/// A routing trace: loads n[step][layer][expert].
pub struct Trace {
    raw: *mut sys::gem_trace_t,
}

// SAFETY: see Options.
unsafe impl Send for Trace {}
unsafe impl Sync for Trace {}

impl Trace {
    fn make<F>(f: F) -> Result<Trace>
    where
        F: FnOnce(*mut *mut sys::gem_trace_t) -> sys::gem_status_t,
    {
        let mut raw = ptr::null_mut();
        check(f(&mut raw))?;
        Ok(Trace { raw })
    }

    /// The C handle, for calls through gem-sys. It stays owned by self.
    pub fn as_ptr(&self) -> *const sys::gem_trace_t {
        self.raw
    }

    /// An empty trace; steps are added as they come.
    pub fn new(num_layers: i32, num_experts: i32) -> Result<Trace> {
        // SAFETY: valid out pointer.
        Trace::make(|out| unsafe { sys::gem_trace_create(out, num_layers, num_experts) })
    }

    /// A complete trace from loads laid out [step][layer][expert] in one slice.
    pub fn from_counts(num_layers: i32, num_experts: i32, loads: &[f64]) -> Result<Trace> {
        if num_layers <= 0 || num_experts <= 0 {
            return Err(invalid(format!("from_counts: {} layers and {} experts, both must be >= 1",
                                       num_layers, num_experts)));
        }
        let row = num_experts as usize;
        let per_step = num_layers as usize * row;
        if loads.len() % per_step != 0 {
            return Err(invalid(format!("from_counts: {} loads are not whole steps of {} x {}",
                                       loads.len(), num_layers, num_experts)));
        }
        let mut t = Trace::new(num_layers, num_experts)?;
        for (i, chunk) in loads.chunks(row).enumerate() {
            t.set((i / num_layers as usize) as i64, (i % num_layers as usize) as i32, chunk)?;
        }
        Ok(t)
    }

    /// Reads a SPEC 4 CSV trace.
    pub fn read<P: AsRef<Path>>(path: P) -> Result<Trace> {
        let c = c_path(path.as_ref())?;
        // SAFETY: NUL-terminated path; valid out pointer.
        Trace::make(|out| unsafe { sys::gem_trace_read(c.as_ptr(), out) })
    }

    /// Parses a SPEC 4 CSV trace from text or bytes.
    pub fn parse<D: AsRef<[u8]>>(data: D) -> Result<Trace> {
        let d = data.as_ref();
        // SAFETY: the buffer is valid for d.len() bytes.
        Trace::make(|out| unsafe { sys::gem_trace_parse(d.as_ptr() as *const c_char, d.len(), out) })
    }

    /// Imports routing data of another tool, with the import options of `opts`.
    pub fn import<P: AsRef<Path>>(format: ImportFormat, path: P, opts: Option<&Options>)
                                  -> Result<Trace> {
        Trace::import_with_note(format, path, opts).map(|(t, _)| t)
    }

    /// As import, also returning the notes about skipped rows ("" when none).
    pub fn import_with_note<P: AsRef<Path>>(format: ImportFormat, path: P,
                                            opts: Option<&Options>) -> Result<(Trace, String)> {
        let c = c_path(path.as_ref())?;
        let mut note: *mut c_char = ptr::null_mut();
        // SAFETY: NUL-terminated path, opts NULL or live, valid out pointers.
        let t = Trace::make(|out| unsafe {
            sys::gem_trace_import(format.raw(), c.as_ptr(), opt_ptr(opts), out, &mut note)
        })?;
        Ok((t, unsafe { take_c_string(note) }))
    }

    /// Imports routing data from a buffer.
    pub fn import_buffer<D: AsRef<[u8]>>(format: ImportFormat, data: D, opts: Option<&Options>)
                                         -> Result<(Trace, String)> {
        let d = data.as_ref();
        let mut note: *mut c_char = ptr::null_mut();
        // SAFETY: the buffer is valid for d.len() bytes; valid out pointers.
        let t = Trace::make(|out| unsafe {
            sys::gem_trace_import_buffer(format.raw(), d.as_ptr() as *const c_char, d.len(),
                                         opt_ptr(opts), out, &mut note)
        })?;
        Ok((t, unsafe { take_c_string(note) }))
    }

    /// Synthetic trace with consistent, temporal and cold experts, deterministic for the seed
    /// of `opts`; skew in [0, 1].
    pub fn synthesize(num_steps: i64, num_layers: i32, num_experts: i32, tokens_per_step: i64,
                      skew: f64, opts: Option<&Options>) -> Result<Trace> {
        // SAFETY: opts NULL or live; valid out pointer.
        Trace::make(|out| unsafe {
            sys::gem_trace_synthesize(num_steps, num_layers, num_experts, tokens_per_step, skew,
                                      opt_ptr(opts), out)
        })
    }

    /// Deep copy.
    pub fn try_clone(&self) -> Result<Trace> {
        // SAFETY: live handle; valid out pointer.
        Trace::make(|out| unsafe { sys::gem_trace_clone(self.raw, out) })
    }

    /// (num_steps, num_layers, num_experts).
    pub fn shape(&self) -> (i64, i32, i32) {
        let (mut s, mut l, mut e) = (0i64, 0i32, 0i32);
        // SAFETY: live handle; cannot fail with valid arguments.
        unsafe { sys::gem_trace_shape(self.raw, &mut s, &mut l, &mut e) };
        (s, l, e)
    }

    pub fn num_steps(&self) -> i64 {
        self.shape().0
    }

    pub fn num_layers(&self) -> i32 {
        self.shape().1
    }

    pub fn num_experts(&self) -> i32 {
        self.shape().2
    }

    /// Sets the loads of (step, layer): num_experts values, finite and >= 0.
    pub fn set(&mut self, step: i64, layer: i32, loads: &[f64]) -> Result<()> {
        // SAFETY: live handle; the slice holds loads.len() values (copied).
        check(unsafe { sys::gem_trace_set(self.raw, step, layer, loads.as_ptr(), loads.len()) })
    }

    /// Adds one token per expert id of `topk_ids` (rows of `k` ids per token, ids < 0 are
    /// padding) to (step, layer). For engines that record live.
    pub fn record(&mut self, step: i64, layer: i32, topk_ids: &[i32], k: usize) -> Result<()> {
        if k == 0 || topk_ids.len() % k != 0 {
            return Err(invalid(format!("record: {} ids are not rows of k = {}", topk_ids.len(), k)));
        }
        let k32 = to_i32(k, "k")?;
        // SAFETY: live handle; the slice holds n_tokens * k ids.
        check(unsafe {
            sys::gem_trace_record(self.raw, step, layer, topk_ids.as_ptr(), topk_ids.len() / k, k32)
        })
    }

    /// The loads of (step, layer).
    pub fn get(&self, step: i64, layer: i32) -> Result<Vec<f64>> {
        let n = self.num_experts().max(0) as usize;
        let mut v = vec![0f64; n];
        // SAFETY: v holds num_experts values.
        check(unsafe { sys::gem_trace_get(self.raw, step, layer, v.as_mut_ptr(), n) })?;
        Ok(v)
    }

    /// Ok when every (step, layer) row is present, else `Status::Incomplete` naming the first
    /// missing one.
    pub fn validate(&self) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::gem_trace_validate(self.raw) })
    }

    /// Steps [first, first + count) renumbered from 0.
    pub fn slice(&self, first: i64, count: i64) -> Result<Trace> {
        // SAFETY: live handle; valid out pointer.
        Trace::make(|out| unsafe { sys::gem_trace_slice(self.raw, first, count, out) })
    }

    /// Writes a SPEC 4 CSV file, whole or not at all.
    pub fn write<P: AsRef<Path>>(&self, path: P) -> Result<()> {
        let c = c_path(path.as_ref())?;
        // SAFETY: live handle, NUL-terminated path.
        check(unsafe { sys::gem_trace_write(self.raw, c.as_ptr()) })
    }

    /// The SPEC 4 CSV text.
    pub fn to_csv(&self) -> Result<String> {
        let mut s: *mut c_char = ptr::null_mut();
        // SAFETY: live handle; s receives a string we free with gem_free.
        check(unsafe { sys::gem_trace_to_string(self.raw, &mut s) })?;
        Ok(unsafe { take_c_string(s) })
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        unsafe { sys::gem_trace_destroy(self.raw) }
    }
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (s, l, e) = self.shape();
        f.debug_struct("Trace").field("steps", &s).field("layers", &l).field("experts", &e).finish()
    }
}
