//! Evaluation of a mapping with the cost model of SPEC 2.
use std::os::raw::c_char;
use std::ptr;

use gem_sys as sys;

use crate::error::{check, take_c_string, Result};
use crate::options::{opt_ptr, Options};
use crate::{Mapping, Metric, Profile, Trace};

/// Results of `evaluate`; times in microseconds.
pub struct Report {
    raw: *mut sys::gem_report_t,
    num_gpus: i32,
}

// SAFETY: see Options.
unsafe impl Send for Report {}
unsafe impl Sync for Report {}

/// Replays the trace through the mapping with the profile's cost model.
pub fn evaluate(profile: &Profile, trace: &Trace, mapping: &Mapping, opts: Option<&Options>)
                -> Result<Report> {
    let mut raw = ptr::null_mut();
    // SAFETY: live handles; valid out pointer.
    check(unsafe {
        sys::gem_evaluate(profile.as_ptr(), trace.as_ptr(), mapping.as_ptr(), opt_ptr(opts),
                          &mut raw)
    })?;
    Ok(Report { raw, num_gpus: profile.num_gpus() })
}

impl Report {
    /// The C handle, for calls through gem-sys. It stays owned by self.
    pub fn as_ptr(&self) -> *const sys::gem_report_t {
        self.raw
    }

    pub fn get(&self, metric: Metric) -> Result<f64> {
        let mut v = 0f64;
        // SAFETY: live handle, valid out pointer.
        check(unsafe { sys::gem_report_get(self.raw, metric.raw(), &mut v) })?;
        Ok(v)
    }

    fn metric(&self, metric: Metric) -> f64 {
        self.get(metric).unwrap_or(f64::NAN)
    }

    /// Mean step latency.
    pub fn mean(&self) -> f64 {
        self.metric(Metric::Mean)
    }
    pub fn p50(&self) -> f64 {
        self.metric(Metric::P50)
    }
    pub fn p90(&self) -> f64 {
        self.metric(Metric::P90)
    }
    pub fn p99(&self) -> f64 {
        self.metric(Metric::P99)
    }
    /// Sum of step latencies.
    pub fn total(&self) -> f64 {
        self.metric(Metric::Total)
    }
    /// A mean no mapping with the same constraints can beat.
    pub fn lower_bound(&self) -> f64 {
        self.metric(Metric::LowerBound)
    }
    /// Largest step latency.
    pub fn max(&self) -> f64 {
        self.metric(Metric::Max)
    }
    /// Mean over (step, layer) of max_g T_g / mean_g T_g.
    pub fn imbalance(&self) -> f64 {
        self.metric(Metric::Imbalance)
    }
    /// Number of steps evaluated.
    pub fn steps(&self) -> i64 {
        self.metric(Metric::Steps) as i64
    }

    /// (busy microseconds, straggler count) of a GPU.
    pub fn gpu(&self, gpu: i32) -> Result<(f64, i64)> {
        let (mut busy, mut count) = (0f64, 0i64);
        // SAFETY: live handle, valid out pointers.
        check(unsafe { sys::gem_report_gpu(self.raw, gpu, &mut busy, &mut count) })?;
        Ok((busy, count))
    }

    /// `gpu(g)` of every GPU of the evaluated profile.
    pub fn gpus(&self) -> Result<Vec<(f64, i64)>> {
        (0..self.num_gpus).map(|g| self.gpu(g)).collect()
    }

    /// Latency of one step.
    pub fn step(&self, step: i64) -> Result<f64> {
        let mut v = 0f64;
        // SAFETY: live handle, valid out pointer.
        check(unsafe { sys::gem_report_step(self.raw, step, &mut v) })?;
        Ok(v)
    }

    /// Every step's latency.
    pub fn step_latencies(&self) -> Result<Vec<f64>> {
        (0..self.steps()).map(|s| self.step(s)).collect()
    }

    /// The library's JSON object (mean, p50, p90, p99, total and more).
    pub fn to_json(&self) -> Result<String> {
        let mut s: *mut c_char = ptr::null_mut();
        // SAFETY: live handle; s receives a string we free with gem_free.
        check(unsafe { sys::gem_report_to_json(self.raw, &mut s) })?;
        Ok(unsafe { take_c_string(s) })
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        unsafe { sys::gem_report_destroy(self.raw) }
    }
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report").field("mean", &self.mean()).field("p90", &self.p90())
            .field("steps", &self.steps()).finish()
    }
}
