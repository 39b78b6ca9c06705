//! Mappings: placements of experts on GPUs (SPEC 1 and 5) and engine exports.
use std::os::raw::c_char;
use std::path::Path;
use std::ptr;

use gem_sys as sys;

use crate::error::{c_path, c_string, check, from_c_opt, take_c_string, Result};
use crate::options::{opt_ptr, Options};
use crate::ExportFormat;

/// One placement: `share` of `expert`'s tokens go to `gpu`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placement {
    pub expert: i32,
    pub gpu: i32,
    pub share: f64,
}

/// A mapping of every layer's experts onto GPUs.
pub struct Mapping {
    raw: *mut sys::gem_mapping_t,
}

// SAFETY: see Options.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Mapping {
    /// # Safety
    /// `raw` is an owned, live mapping handle.
    pub(crate) unsafe fn from_raw(raw: *mut sys::gem_mapping_t) -> Mapping {
        Mapping { raw }
    }

    fn make<F>(f: F) -> Result<Mapping>
    where
        F: FnOnce(*mut *mut sys::gem_mapping_t) -> sys::gem_status_t,
    {
        let mut raw = ptr::null_mut();
        check(f(&mut raw))?;
        Ok(Mapping { raw })
    }

    /// The C handle, for calls through gem-sys. It stays owned by self.
    pub fn as_ptr(&self) -> *const sys::gem_mapping_t {
        self.raw
    }

    /// An empty mapping; add placements, then validate.
    pub fn new(num_gpus: i32, num_layers: i32, num_experts: i32) -> Result<Mapping> {
        // SAFETY: valid out pointer.
        Mapping::make(|out| unsafe { sys::gem_mapping_create(out, num_gpus, num_layers, num_experts) })
    }

    /// Reads a SPEC 5 mapping file.
    pub fn read<P: AsRef<Path>>(path: P) -> Result<Mapping> {
        let c = c_path(path.as_ref())?;
        // SAFETY: NUL-terminated path; valid out pointer.
        Mapping::make(|out| unsafe { sys::gem_mapping_read(c.as_ptr(), out) })
    }

    /// Parses a SPEC 5 mapping from text or bytes.
    pub fn parse<D: AsRef<[u8]>>(data: D) -> Result<Mapping> {
        let d = data.as_ref();
        // SAFETY: the buffer is valid for d.len() bytes.
        Mapping::make(|out| unsafe {
            sys::gem_mapping_parse(d.as_ptr() as *const c_char, d.len(), out)
        })
    }

    /// Deep copy.
    pub fn try_clone(&self) -> Result<Mapping> {
        // SAFETY: live handle; valid out pointer.
        Mapping::make(|out| unsafe { sys::gem_mapping_clone(self.raw, out) })
    }

    /// (num_gpus, num_layers, num_experts).
    pub fn shape(&self) -> (i32, i32, i32) {
        let (mut g, mut l, mut e) = (0i32, 0i32, 0i32);
        // SAFETY: live handle; cannot fail with valid arguments.
        unsafe { sys::gem_mapping_shape(self.raw, &mut g, &mut l, &mut e) };
        (g, l, e)
    }

    /// Adds (expert, gpu, share) to a layer; share in (0, 1].
    pub fn add(&mut self, layer: i32, expert: i32, gpu: i32, share: f64) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::gem_mapping_add(self.raw, layer, expert, gpu, share) })
    }

    /// Removes every placement of a layer.
    pub fn clear_layer(&mut self, layer: i32) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::gem_mapping_clear_layer(self.raw, layer) })
    }

    /// The descriptive policy name stored in the file.
    pub fn set_policy_name(&mut self, name: &str) -> Result<()> {
        let c = c_string(name, "policy name")?;
        // SAFETY: live handle, NUL-terminated (copied).
        check(unsafe { sys::gem_mapping_set_policy_name(self.raw, c.as_ptr()) })
    }

    /// The policy name, None when unset.
    pub fn policy_name(&self) -> Option<String> {
        let mut p: *const c_char = ptr::null();
        // SAFETY: live handle; the name is owned by the handle and copied at once.
        unsafe {
            if sys::gem_mapping_get_policy_name(self.raw, &mut p) != sys::GEM_OK {
                return None;
            }
            from_c_opt(p)
        }
    }

    pub fn num_placements(&self, layer: i32) -> Result<usize> {
        let mut n = 0usize;
        // SAFETY: live handle, valid out pointer.
        check(unsafe { sys::gem_mapping_num_placements(self.raw, layer, &mut n) })?;
        Ok(n)
    }

    /// The i-th placement of a layer, in the order added (or read).
    pub fn get(&self, layer: i32, i: usize) -> Result<Placement> {
        let mut p = Placement { expert: 0, gpu: 0, share: 0.0 };
        // SAFETY: live handle, valid out pointers.
        check(unsafe {
            sys::gem_mapping_get(self.raw, layer, i, &mut p.expert, &mut p.gpu, &mut p.share)
        })?;
        Ok(p)
    }

    /// Every placement of a layer.
    pub fn placements(&self, layer: i32) -> Result<Vec<Placement>> {
        let n = self.num_placements(layer)?;
        (0..n).map(|i| self.get(layer, i)).collect()
    }

    /// GPU of an expert that has exactly one placement.
    pub fn expert_gpu(&self, layer: i32, expert: i32) -> Result<i32> {
        let mut g = 0i32;
        // SAFETY: live handle, valid out pointer.
        check(unsafe { sys::gem_mapping_expert_gpu(self.raw, layer, expert, &mut g) })?;
        Ok(g)
    }

    /// Experts placed on a GPU in a layer.
    pub fn gpu_slots(&self, layer: i32, gpu: i32) -> Result<i32> {
        let mut s = 0i32;
        // SAFETY: live handle, valid out pointer.
        check(unsafe { sys::gem_mapping_gpu_slots(self.raw, layer, gpu, &mut s) })?;
        Ok(s)
    }

    /// Checks SPEC 1: every expert placed, shares summing to 1, no expert twice on a GPU.
    pub fn validate(&self) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::gem_mapping_validate(self.raw) })
    }

    /// Writes a SPEC 5 file, whole or not at all.
    pub fn write<P: AsRef<Path>>(&self, path: P) -> Result<()> {
        let c = c_path(path.as_ref())?;
        // SAFETY: live handle, NUL-terminated path.
        check(unsafe { sys::gem_mapping_write(self.raw, c.as_ptr()) })
    }

    /// The SPEC 5 JSON text.
    pub fn to_json(&self) -> Result<String> {
        let mut s: *mut c_char = ptr::null_mut();
        // SAFETY: live handle; s receives a string we free with gem_free.
        check(unsafe { sys::gem_mapping_to_string(self.raw, &mut s) })?;
        Ok(unsafe { take_c_string(s) })
    }

    /// Writes the mapping in an engine's format, whole or not at all.
    pub fn export<P: AsRef<Path>>(&self, format: ExportFormat, path: P) -> Result<()> {
        let c = c_path(path.as_ref())?;
        // SAFETY: live handle, NUL-terminated path.
        check(unsafe { sys::gem_mapping_export(self.raw, format.raw(), c.as_ptr()) })
    }

    /// The mapping in an engine's format, as text.
    pub fn export_string(&self, format: ExportFormat) -> Result<String> {
        let mut s: *mut c_char = ptr::null_mut();
        // SAFETY: live handle; s receives a string we free with gem_free.
        check(unsafe { sys::gem_mapping_export_string(self.raw, format.raw(), &mut s) })?;
        Ok(unsafe { take_c_string(s) })
    }

    /// [`Mapping::export`] with options: `Opt::FirstDenseLayers` numbers the layers as the
    /// model does, dense layers included (DeepSeek-V3: 3).
    pub fn export_with<P: AsRef<Path>>(&self, format: ExportFormat, path: P,
                                       opts: Option<&Options>) -> Result<()> {
        let c = c_path(path.as_ref())?;
        // SAFETY: live handles (opts may be null), NUL-terminated path.
        check(unsafe {
            sys::gem_mapping_export_opts(self.raw, format.raw(), opt_ptr(opts), c.as_ptr())
        })
    }

    /// [`Mapping::export_string`] with options (see [`Mapping::export_with`]).
    pub fn export_string_with(&self, format: ExportFormat, opts: Option<&Options>)
                              -> Result<String> {
        let mut s: *mut c_char = ptr::null_mut();
        // SAFETY: live handles (opts may be null); s receives a string we free with gem_free.
        check(unsafe {
            sys::gem_mapping_export_string_opts(self.raw, format.raw(), opt_ptr(opts), &mut s)
        })?;
        Ok(unsafe { take_c_string(s) })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: owned handle, freed once.
        unsafe { sys::gem_mapping_destroy(self.raw) }
    }
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (g, l, e) = self.shape();
        f.debug_struct("Mapping").field("gpus", &g).field("layers", &l).field("experts", &e).finish()
    }
}
