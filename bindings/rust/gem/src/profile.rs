//! Profiles: per-GPU latency curves (SPEC 3), and the profiling backends.
use std::os::raw::c_char;
use std::path::Path;
use std::ptr;

use gem_sys as sys;

use crate::error::{c_path, c_string, check, from_c_opt, invalid, take_c_string, Result};
use crate::options::{opt_ptr, Options};
use crate::{Backend, CostModel, Error, Interpolation, Opt, Status};

/// A profile: for every GPU a latency curve f_g (microseconds for one expert on x tokens) and a
/// fixed per-layer cost.
pub struct Profile {
    raw: *mut sys::gem_profile_t,
}

// SAFETY: see Options; const functions are thread-safe, mutation takes &mut self.
unsafe impl Send for Profile {}
unsafe impl Sync for Profile {}

impl Profile {
    fn make<F>(f: F) -> Result<Profile>
    where
        F: FnOnce(*mut *mut sys::gem_profile_t) -> sys::gem_status_t,
    {
        let mut raw = ptr::null_mut();
        check(f(&mut raw))?;
        Ok(Profile { raw })
    }

    /// The C handle, for calls through gem-sys. It stays owned by self.
    pub fn as_ptr(&self) -> *const sys::gem_profile_t {
        self.raw
    }

    /// An empty profile of `num_gpus` GPUs; each needs a curve before use.
    pub fn new(num_gpus: i32) -> Result<Profile> {
        // SAFETY: valid out pointer.
        Profile::make(|out| unsafe { sys::gem_profile_create(out, num_gpus) })
    }

    /// Reads a SPEC 3 profile file.
    pub fn read<P: AsRef<Path>>(path: P) -> Result<Profile> {
        let c = c_path(path.as_ref())?;
        // SAFETY: c is NUL-terminated; valid out pointer.
        Profile::make(|out| unsafe { sys::gem_profile_read(c.as_ptr(), out) })
    }

    /// Parses a SPEC 3 profile from text or bytes.
    pub fn parse<D: AsRef<[u8]>>(data: D) -> Result<Profile> {
        let d = data.as_ref();
        // SAFETY: the buffer is valid for d.len() bytes (need not be NUL-terminated).
        Profile::make(|out| unsafe {
            sys::gem_profile_parse(d.as_ptr() as *const c_char, d.len(), out)
        })
    }

    /// Profiles GPUs with a backend (gem_profile_gpus); `opts` None means defaults.
    pub fn measure(backend: Backend, opts: Option<&Options>) -> Result<Profile> {
        // SAFETY: opts is NULL or live; valid out pointer.
        Profile::make(|out| unsafe { sys::gem_profile_gpus(backend.raw(), opt_ptr(opts), out) })
    }

    /// Emulated GPUs (the sim backend): `gpus` GPUs whose throughput spreads by `spread`.
    pub fn sim(gpus: i32, spread: f64, seed: i64) -> Result<Profile> {
        let mut o = Options::new()?;
        o.set_int(Opt::SimGpus, gpus as i64)?;
        o.set_double(Opt::SimSpread, spread)?;
        o.set_int(Opt::Seed, seed)?;
        Profile::measure(Backend::Sim, Some(&o))
    }

    /// Deep copy.
    pub fn try_clone(&self) -> Result<Profile> {
        // SAFETY: live handle; valid out pointer.
        Profile::make(|out| unsafe { sys::gem_profile_clone(self.raw, out) })
    }

    pub fn num_gpus(&self) -> i32 {
        let mut n = 0i32;
        // SAFETY: live handle; cannot fail with valid arguments.
        unsafe { sys::gem_profile_num_gpus(self.raw, &mut n) };
        n
    }

    /// Sets a GPU's curve: tokens strictly ascending >= 1, latencies finite > 0, cv (the
    /// coefficient of variation of each sample) optional. The slices must be equally long.
    pub fn set_curve(&mut self, gpu: i32, tokens: &[i64], latency_us: &[f64],
                     cv: Option<&[f64]>) -> Result<()> {
        if tokens.len() != latency_us.len() {
            return Err(invalid(format!("set_curve: {} tokens but {} latencies", tokens.len(),
                                       latency_us.len())));
        }
        if let Some(cv) = cv {
            if cv.len() != tokens.len() {
                return Err(invalid(format!("set_curve: {} tokens but {} cv values",
                                           tokens.len(), cv.len())));
            }
        }
        let cvp = cv.map_or(ptr::null(), |c| c.as_ptr());
        // SAFETY: live handle; each array holds tokens.len() values (copied).
        check(unsafe {
            sys::gem_profile_set_curve(self.raw, gpu, tokens.len(), tokens.as_ptr(),
                                       latency_us.as_ptr(), cvp)
        })
    }

    /// (tokens, latency_us) of a GPU's curve.
    pub fn curve(&self, gpu: i32) -> Result<(Vec<i64>, Vec<f64>)> {
        let mut k = 0usize;
        // SAFETY: cap 0 with NULL arrays asks for the length only.
        check(unsafe {
            sys::gem_profile_get_curve(self.raw, gpu, ptr::null_mut(), ptr::null_mut(), 0, &mut k)
        })?;
        let (mut t, mut l) = (vec![0i64; k], vec![0f64; k]);
        // SAFETY: both vectors hold k values.
        check(unsafe {
            sys::gem_profile_get_curve(self.raw, gpu, t.as_mut_ptr(), l.as_mut_ptr(), k, &mut k)
        })?;
        t.truncate(k);
        l.truncate(k);
        Ok((t, l))
    }

    pub fn set_overhead(&mut self, gpu: i32, us: f64) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::gem_profile_set_overhead(self.raw, gpu, us) })
    }

    pub fn overhead(&self, gpu: i32) -> Result<f64> {
        let mut v = 0f64;
        // SAFETY: live handle, valid out pointer.
        check(unsafe { sys::gem_profile_get_overhead(self.raw, gpu, &mut v) })?;
        Ok(v)
    }

    pub fn set_interpolation(&mut self, interp: Interpolation) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::gem_profile_set_interpolation(self.raw, interp.raw()) })
    }

    pub fn interpolation(&self) -> Result<Interpolation> {
        let mut v = 0;
        // SAFETY: live handle, valid out pointer.
        check(unsafe { sys::gem_profile_get_interpolation(self.raw, &mut v) })?;
        Interpolation::from_raw(v).ok_or_else(|| newer("interpolation", v))
    }

    pub fn set_cost_model(&mut self, model: CostModel) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::gem_profile_set_cost_model(self.raw, model.raw()) })
    }

    pub fn cost_model(&self) -> Result<CostModel> {
        let mut v = 0;
        // SAFETY: live handle, valid out pointer.
        check(unsafe { sys::gem_profile_get_cost_model(self.raw, &mut v) })?;
        CostModel::from_raw(v).ok_or_else(|| newer("cost model", v))
    }

    /// Sets a descriptive string of a GPU: key "name", "pci_bus_id", "host" or "cpuset".
    pub fn set_gpu_string(&mut self, gpu: i32, key: &str, value: &str) -> Result<()> {
        let (k, v) = (c_string(key, "key")?, c_string(value, "value")?);
        // SAFETY: live handle, NUL-terminated strings (copied).
        check(unsafe { sys::gem_profile_set_gpu_string(self.raw, gpu, k.as_ptr(), v.as_ptr()) })
    }

    /// A descriptive string of a GPU, None when absent.
    pub fn gpu_string(&self, gpu: i32, key: &str) -> Result<Option<String>> {
        let k = c_string(key, "key")?;
        let mut v: *const c_char = ptr::null();
        // SAFETY: live handle; the result is owned by the handle and copied at once.
        check(unsafe { sys::gem_profile_get_gpu_string(self.raw, gpu, k.as_ptr(), &mut v) })?;
        Ok(unsafe { from_c_opt(v) })
    }

    /// f_g(tokens) of SPEC 2, in microseconds.
    pub fn latency(&self, gpu: i32, tokens: f64) -> Result<f64> {
        let mut v = 0f64;
        // SAFETY: live handle, valid out pointer.
        check(unsafe { sys::gem_profile_latency(self.raw, gpu, tokens, &mut v) })?;
        Ok(v)
    }

    /// Relative speed of every GPU, the fastest 1.0.
    pub fn speeds(&self) -> Result<Vec<f64>> {
        let n = self.num_gpus().max(0) as usize;
        let mut v = vec![0f64; n];
        // SAFETY: v holds num_gpus values.
        check(unsafe { sys::gem_profile_speeds(self.raw, v.as_mut_ptr(), n) })?;
        Ok(v)
    }

    /// Writes a SPEC 3 file, whole or not at all.
    pub fn write<P: AsRef<Path>>(&self, path: P) -> Result<()> {
        let c = c_path(path.as_ref())?;
        // SAFETY: live handle, NUL-terminated path.
        check(unsafe { sys::gem_profile_write(self.raw, c.as_ptr()) })
    }

    /// The SPEC 3 JSON text.
    pub fn to_json(&self) -> Result<String> {
        let mut s: *mut c_char = ptr::null_mut();
        // SAFETY: live handle; s receives a string we free with gem_free.
        check(unsafe { sys::gem_profile_to_string(self.raw, &mut s) })?;
        Ok(unsafe { take_c_string(s) })
    }

    /// Appends the GPUs of `src` after these (merging the profiles of MPI ranks).
    pub fn append(&mut self, src: &Profile) -> Result<()> {
        // SAFETY: both live; &mut self and &src cannot alias.
        check(unsafe { sys::gem_profile_append(self.raw, src.raw) })
    }

    /// Measures all-to-all with NCCL into the profile's alltoall section.
    pub fn measure_alltoall(&mut self, opts: Option<&Options>) -> Result<()> {
        // SAFETY: live handle; opts NULL or live.
        check(unsafe { sys::gem_profile_measure_alltoall(self.raw, opt_ptr(opts)) })
    }

    /// Fills each GPU's host, NUMA node and CPU set from hwloc.
    pub fn add_topology(&mut self) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::gem_profile_add_topology(self.raw) })
    }
}

pub(crate) fn newer(what: &str, v: i32) -> Error {
    Error::new(Status::NotSupported, format!("{} value {} is newer than these bindings", what, v))
}

impl Drop for Profile {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        unsafe { sys::gem_profile_destroy(self.raw) }
    }
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile").field("num_gpus", &self.num_gpus()).finish()
    }
}
