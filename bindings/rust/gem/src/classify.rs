//! Classification of experts (cold, consistent, temporal) and their co-activation.
use std::ptr;

use gem_sys as sys;

use crate::error::{check, Result};
use crate::options::{opt_ptr, Options};
use crate::profile::newer;
use crate::{ExpertClass, Trace};

/// What the classification says about one expert.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExpertInfo {
    pub class: ExpertClass,
    /// Fraction of steps the expert was heavy in.
    pub heavy_fraction: f64,
    /// Mean load over all steps.
    pub mean_load: f64,
    /// Mean load in the steps it was heavy (0 if never).
    pub mean_heavy_load: f64,
}

/// The class of every expert of every layer of a trace.
pub struct Classification {
    raw: *mut sys::gem_classification_t,
}

// SAFETY: see Options.
unsafe impl Send for Classification {}
unsafe impl Sync for Classification {}

pub(crate) fn cls_ptr(c: Option<&Classification>) -> *const sys::gem_classification_t {
    c.map_or(ptr::null(), |c| c.raw as *const _)
}

/// Classifies every expert of a complete trace, with the classification options of `opts`.
pub fn classify(trace: &Trace, opts: Option<&Options>) -> Result<Classification> {
    let mut raw = ptr::null_mut();
    // SAFETY: live handles; valid out pointer.
    check(unsafe { sys::gem_classify_experts(trace.as_ptr(), opt_ptr(opts), &mut raw) })?;
    Ok(Classification { raw })
}

impl Classification {
    /// The C handle, for calls through gem-sys. It stays owned by self.
    pub fn as_ptr(&self) -> *const sys::gem_classification_t {
        self.raw
    }

    /// (num_steps, num_layers, num_experts) of the classified trace.
    pub fn shape(&self) -> (i64, i32, i32) {
        let (mut s, mut l, mut e) = (0i64, 0i32, 0i32);
        // SAFETY: live handle; cannot fail with valid arguments.
        unsafe { sys::gem_classification_shape(self.raw, &mut s, &mut l, &mut e) };
        (s, l, e)
    }

    pub fn get(&self, layer: i32, expert: i32) -> Result<ExpertInfo> {
        let (mut c, mut hf, mut ml, mut mh) = (0, 0f64, 0f64, 0f64);
        // SAFETY: live handle, valid out pointers.
        check(unsafe {
            sys::gem_classification_get(self.raw, layer, expert, &mut c, &mut hf, &mut ml, &mut mh)
        })?;
        let class = ExpertClass::from_raw(c).ok_or_else(|| newer("expert class", c))?;
        Ok(ExpertInfo { class, heavy_fraction: hf, mean_load: ml, mean_heavy_load: mh })
    }

    /// Steps in which experts a and b of a layer were both heavy (a == b: steps a was heavy).
    pub fn coactivation(&self, layer: i32, a: i32, b: i32) -> Result<i64> {
        let mut v = 0i64;
        // SAFETY: live handle, valid out pointer.
        check(unsafe { sys::gem_classification_coactivation(self.raw, layer, a, b, &mut v) })?;
        Ok(v)
    }
}

impl Drop for Classification {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        unsafe { sys::gem_classification_destroy(self.raw) }
    }
}

impl std::fmt::Debug for Classification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (s, l, e) = self.shape();
        f.debug_struct("Classification").field("steps", &s).field("layers", &l)
            .field("experts", &e).finish()
    }
}
