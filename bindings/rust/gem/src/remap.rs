//! Experimental (GEM_EXPERIMENTAL, feature "experimental"): migration-aware re-mapping.
//! May change between minor versions of libgem.
use std::ptr;

use gem_sys as sys;

use crate::error::{check, Result};
use crate::options::{opt_ptr, Options};
use crate::{Mapping, Profile, Trace};

/// Result of `remap`.
pub struct RemapResult {
    raw: *mut sys::gem_remap_result_t,
}

// SAFETY: see Options.
unsafe impl Send for RemapResult {}
unsafe impl Sync for RemapResult {}

/// Finds a mapping close to `current` (within GEM_OPT_MAX_MOVES / MAX_MOVE_BYTES) that serves
/// the trace `window` better.
pub fn remap(profile: &Profile, window: &Trace, current: &Mapping, opts: Option<&Options>)
             -> Result<RemapResult> {
    let mut raw = ptr::null_mut();
    // SAFETY: live handles; valid out pointer.
    check(unsafe {
        sys::gem_remap(profile.as_ptr(), window.as_ptr(), current.as_ptr(), opt_ptr(opts),
                       &mut raw)
    })?;
    Ok(RemapResult { raw })
}

/// Mean step latency of `mapping` on `window` divided by its mean on `built_on`.
pub fn drift(profile: &Profile, built_on: &Trace, window: &Trace, mapping: &Mapping)
             -> Result<f64> {
    let mut v = 0f64;
    // SAFETY: live handles; valid out pointer.
    check(unsafe {
        sys::gem_drift(profile.as_ptr(), built_on.as_ptr(), window.as_ptr(), mapping.as_ptr(),
                       &mut v)
    })?;
    Ok(v)
}

/// Predicted figures of a re-mapping.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RemapFigures {
    pub current_us: f64,
    pub remapped_us: f64,
    pub unconstrained_us: f64,
    pub moves: i64,
    pub bytes_moved: u64,
    pub recommend: bool,
}

impl RemapResult {
    pub fn figures(&self) -> Result<RemapFigures> {
        let mut f = RemapFigures {
            current_us: 0.0,
            remapped_us: 0.0,
            unconstrained_us: 0.0,
            moves: 0,
            bytes_moved: 0,
            recommend: false,
        };
        let mut rec = 0i32;
        // SAFETY: live handle, valid out pointers.
        check(unsafe {
            sys::gem_remap_result_get(self.raw, &mut f.current_us, &mut f.remapped_us,
                                      &mut f.unconstrained_us, &mut f.moves, &mut f.bytes_moved,
                                      &mut rec)
        })?;
        f.recommend = rec != 0;
        Ok(f)
    }

    /// A copy of the proposed mapping (it outlives the result).
    pub fn mapping(&self) -> Result<Mapping> {
        let mut m: *const sys::gem_mapping_t = ptr::null();
        // SAFETY: live handle; m is owned by the result and cloned before the result can go.
        check(unsafe { sys::gem_remap_result_mapping(self.raw, &mut m) })?;
        let mut out = ptr::null_mut();
        check(unsafe { sys::gem_mapping_clone(m, &mut out) })?;
        Ok(unsafe { Mapping::from_raw(out) })
    }
}

impl Drop for RemapResult {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        unsafe { sys::gem_remap_result_destroy(self.raw) }
    }
}
