//! Raw declarations of libgem's C API, written by hand from `include/gem.h` (which is the
//! specification of every function: read its comments). Enumerations are plain `c_int`
//! aliases with constants, because the library may return values appended after this crate
//! was written. The `experimental` feature adds the `GEM_EXPERIMENTAL` part.
//!
//! Use the `gem` crate for a safe interface.
#![allow(non_camel_case_types)]

use std::marker::{PhantomData, PhantomPinned};
// std::os::raw, not std::ffi: std::ffi::c_int and friends need Rust 1.64, Debian 12 has 1.63.
pub use std::os::raw::{c_char, c_int, c_uint, c_void};

// ---- version ---------------------------------------------------------------------------------

pub const GEM_VERSION_MAJOR: c_uint = 1;
pub const GEM_VERSION_MINOR: c_uint = 0;
pub const GEM_VERSION_PATCH: c_uint = 0;
pub const GEM_VERSION_NUMBER: c_uint =
    GEM_VERSION_MAJOR * 10000 + GEM_VERSION_MINOR * 100 + GEM_VERSION_PATCH;
pub const GEM_VERSION_STRING: &str = "1.0.0";

// ---- status ----------------------------------------------------------------------------------

pub type gem_status_t = c_int;
pub const GEM_OK: gem_status_t = 0;
pub const GEM_ERR_INVALID_ARGUMENT: gem_status_t = 1;
pub const GEM_ERR_INVALID_INPUT: gem_status_t = 2;
pub const GEM_ERR_IO: gem_status_t = 3;
pub const GEM_ERR_NO_MEMORY: gem_status_t = 4;
pub const GEM_ERR_NOT_SUPPORTED: gem_status_t = 5;
pub const GEM_ERR_NO_DEVICE: gem_status_t = 6;
pub const GEM_ERR_DEVICE: gem_status_t = 7;
pub const GEM_ERR_OUT_OF_RANGE: gem_status_t = 8;
pub const GEM_ERR_SHAPE_MISMATCH: gem_status_t = 9;
pub const GEM_ERR_INFEASIBLE: gem_status_t = 10;
pub const GEM_ERR_LIMIT: gem_status_t = 11;
pub const GEM_ERR_INCOMPLETE: gem_status_t = 12;
pub const GEM_ERR_VERSION: gem_status_t = 13;
pub const GEM_ERR_INTERNAL: gem_status_t = 14;
pub const GEM_ERR_CANCELLED: gem_status_t = 15;

pub const GEM_MAX_GPUS: i32 = 65536;
pub const GEM_MAX_LAYERS: i32 = 65536;
pub const GEM_MAX_EXPERTS: i32 = 65536;
pub const GEM_MAX_STEPS: i64 = 100000000;
pub const GEM_MAX_CURVE_POINTS: usize = 1048576;
pub const GEM_MAX_TOKENS: i64 = 1073741824;

// ---- enumerations ----------------------------------------------------------------------------

pub type gem_interpolation_t = c_int;
pub const GEM_INTERP_STEP: gem_interpolation_t = 0;
pub const GEM_INTERP_LINEAR: gem_interpolation_t = 1;

pub type gem_cost_model_t = c_int;
pub const GEM_COST_PER_EXPERT: gem_cost_model_t = 0;
pub const GEM_COST_AGGREGATE: gem_cost_model_t = 1;

pub type gem_policy_t = c_int;
pub const GEM_POLICY_CONTIGUOUS: gem_policy_t = 0;
pub const GEM_POLICY_ROUND_ROBIN: gem_policy_t = 1;
pub const GEM_POLICY_BALANCED: gem_policy_t = 2;
pub const GEM_POLICY_SPEED_AWARE: gem_policy_t = 3;
pub const GEM_POLICY_GEM: gem_policy_t = 4;
pub const GEM_POLICY_EPLB: gem_policy_t = 5;
pub const GEM_POLICY_EXACT: gem_policy_t = 6;
pub const GEM_POLICY_COUNT: c_int = 7;

pub type gem_backend_t = c_int;
pub const GEM_BACKEND_SIM: gem_backend_t = 0;
pub const GEM_BACKEND_CUDA: gem_backend_t = 1;
pub const GEM_BACKEND_NCCL: gem_backend_t = 2;
pub const GEM_BACKEND_HWLOC: gem_backend_t = 3;
pub const GEM_BACKEND_CALLBACK: gem_backend_t = 4;
pub const GEM_BACKEND_MPI: gem_backend_t = 5;

pub type gem_expert_class_t = c_int;
pub const GEM_CLASS_COLD: gem_expert_class_t = 0;
pub const GEM_CLASS_CONSISTENT: gem_expert_class_t = 1;
pub const GEM_CLASS_TEMPORAL: gem_expert_class_t = 2;

pub type gem_dtype_t = c_int;
pub const GEM_DTYPE_BF16: gem_dtype_t = 0;
pub const GEM_DTYPE_FP16: gem_dtype_t = 1;
pub const GEM_DTYPE_FP8: gem_dtype_t = 2;
pub const GEM_DTYPE_FP32: gem_dtype_t = 3;

pub type gem_objective_t = c_int;
pub const GEM_OBJECTIVE_MEAN: gem_objective_t = 0;
pub const GEM_OBJECTIVE_P90: gem_objective_t = 1;

pub type gem_share_rule_t = c_int;
pub const GEM_SHARES_SPEED_WEIGHTED: gem_share_rule_t = 0;
pub const GEM_SHARES_EQUAL: gem_share_rule_t = 1;

pub type gem_export_format_t = c_int;
pub const GEM_EXPORT_SGLANG: gem_export_format_t = 0;
pub const GEM_EXPORT_EPLB: gem_export_format_t = 1;
pub const GEM_EXPORT_TRTLLM: gem_export_format_t = 2;

pub type gem_import_format_t = c_int;
pub const GEM_IMPORT_SGLANG: gem_import_format_t = 0;
pub const GEM_IMPORT_WIDE_CSV: gem_import_format_t = 1;
pub const GEM_IMPORT_TOKENS_JSONL: gem_import_format_t = 2;

pub type gem_option_t = c_int;
pub const GEM_OPT_THREADS: gem_option_t = 0;
pub const GEM_OPT_SEED: gem_option_t = 1;
pub const GEM_OPT_OBJECTIVE: gem_option_t = 2;
pub const GEM_OPT_RESTARTS: gem_option_t = 3;
pub const GEM_OPT_MAX_ITERATIONS: gem_option_t = 4;
pub const GEM_OPT_TIME_LIMIT_MS: gem_option_t = 5;
pub const GEM_OPT_HEAVY_FACTOR: gem_option_t = 6;
pub const GEM_OPT_CONSISTENT_MIN: gem_option_t = 7;
pub const GEM_OPT_TEMPORAL_MIN: gem_option_t = 8;
pub const GEM_OPT_REDUNDANT_SLOTS: gem_option_t = 9;
pub const GEM_OPT_SHARE_RULE: gem_option_t = 10;
pub const GEM_OPT_EXPERT_BYTES: gem_option_t = 11;
pub const GEM_OPT_GPU_MEMORY: gem_option_t = 12;
pub const GEM_OPT_UNEQUAL_SLOTS: gem_option_t = 13;
pub const GEM_OPT_MAX_MOVES: gem_option_t = 14;
pub const GEM_OPT_MAX_MOVE_BYTES: gem_option_t = 15;
pub const GEM_OPT_MIN_GAIN: gem_option_t = 16;
pub const GEM_OPT_TOPOLOGY_AWARE: gem_option_t = 17;
pub const GEM_OPT_COMM_MODEL: gem_option_t = 18;
pub const GEM_OPT_TOKEN_BYTES: gem_option_t = 19;
pub const GEM_OPT_MODEL_HIDDEN: gem_option_t = 20;
pub const GEM_OPT_MODEL_FFN: gem_option_t = 21;
pub const GEM_OPT_MODEL_DTYPE: gem_option_t = 22;
pub const GEM_OPT_MODEL_NAME: gem_option_t = 23;
pub const GEM_OPT_SIM_GPUS: gem_option_t = 24;
pub const GEM_OPT_SIM_SPREAD: gem_option_t = 25;
pub const GEM_OPT_SIM_SLOWDOWNS: gem_option_t = 26;
pub const GEM_OPT_SIM_TILE: gem_option_t = 27;
pub const GEM_OPT_SIM_BANDWIDTH_GBS: gem_option_t = 28;
pub const GEM_OPT_SIM_TFLOPS: gem_option_t = 29;
pub const GEM_OPT_SIM_OVERHEAD_US: gem_option_t = 30;
pub const GEM_OPT_SIM_NOISE: gem_option_t = 31;
pub const GEM_OPT_PROFILE_MAX_TOKENS: gem_option_t = 32;
pub const GEM_OPT_PROFILE_WARMUP_MS: gem_option_t = 33;
pub const GEM_OPT_PROFILE_REPEATS: gem_option_t = 34;
pub const GEM_OPT_PROFILE_DENSE: gem_option_t = 35;
pub const GEM_OPT_HOST_NAME: gem_option_t = 36;
pub const GEM_OPT_ALLTOALL_MAX_BYTES: gem_option_t = 37;
pub const GEM_OPT_INTERPOLATION: gem_option_t = 38;
pub const GEM_OPT_COST_MODEL: gem_option_t = 39;
pub const GEM_OPT_IMPORT_BATCH: gem_option_t = 40;
pub const GEM_OPT_IMPORT_STEPS: gem_option_t = 41;
pub const GEM_OPT_IMPORT_FILTER: gem_option_t = 42;
pub const GEM_OPT_IMPORT_TOPK: gem_option_t = 43;
pub const GEM_OPT_SIM_MEMORY_GB: gem_option_t = 44;
pub const GEM_OPT_FIRST_DENSE_LAYERS: gem_option_t = 45;
pub const GEM_OPT_EXPERTS_PER_TOKEN: gem_option_t = 46;
pub const GEM_OPT_BOUND_SLOTS: gem_option_t = 47;

pub type gem_metric_t = c_int;
pub const GEM_METRIC_MEAN: gem_metric_t = 0;
pub const GEM_METRIC_P50: gem_metric_t = 1;
pub const GEM_METRIC_P90: gem_metric_t = 2;
pub const GEM_METRIC_P99: gem_metric_t = 3;
pub const GEM_METRIC_TOTAL: gem_metric_t = 4;
pub const GEM_METRIC_LOWER_BOUND: gem_metric_t = 5;
pub const GEM_METRIC_MAX: gem_metric_t = 6;
pub const GEM_METRIC_STEPS: gem_metric_t = 7;
pub const GEM_METRIC_IMBALANCE: gem_metric_t = 8;

// ---- opaque handles --------------------------------------------------------------------------

macro_rules! opaque {
    ($($name:ident),*) => {$(
        /// Opaque libgem handle; only ever used behind a pointer.
        #[repr(C)]
        pub struct $name {
            _private: [u8; 0],
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }
    )*};
}
opaque!(gem_options_t, gem_profile_t, gem_trace_t, gem_mapping_t, gem_classification_t,
        gem_report_t, gem_remap_result_t);

/// Engine-supplied runner: microseconds for `tokens` tokens through one expert on `device`,
/// negative on failure. Called from one thread per device at once.
pub type gem_runner_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, device: c_int, tokens: i64) -> f64>;
/// Progress callback: return non-zero to cancel.
pub type gem_progress_fn = Option<
    unsafe extern "C" fn(user: *mut c_void, what: *const c_char, done: f64, total: f64) -> c_int,
>;

extern "C" {
    // version, status and errors
    pub fn gem_version() -> c_uint;
    pub fn gem_version_string() -> *const c_char;
    pub fn gem_status_string(status: gem_status_t) -> *const c_char;
    pub fn gem_last_error() -> *const c_char;
    pub fn gem_free(ptr: *mut c_void);

    // options
    pub fn gem_options_create(out: *mut *mut gem_options_t) -> gem_status_t;
    pub fn gem_options_destroy(opts: *mut gem_options_t);
    pub fn gem_options_clone(opts: *const gem_options_t, out: *mut *mut gem_options_t)
        -> gem_status_t;
    pub fn gem_options_set_int(opts: *mut gem_options_t, key: gem_option_t, value: i64)
        -> gem_status_t;
    pub fn gem_options_set_double(opts: *mut gem_options_t, key: gem_option_t, value: f64)
        -> gem_status_t;
    pub fn gem_options_set_string(opts: *mut gem_options_t, key: gem_option_t,
                                  value: *const c_char) -> gem_status_t;
    pub fn gem_options_set_int_array(opts: *mut gem_options_t, key: gem_option_t,
                                     values: *const i64, n: usize) -> gem_status_t;
    pub fn gem_options_set_double_array(opts: *mut gem_options_t, key: gem_option_t,
                                        values: *const f64, n: usize) -> gem_status_t;
    pub fn gem_options_get_int(opts: *const gem_options_t, key: gem_option_t, value: *mut i64)
        -> gem_status_t;
    pub fn gem_options_get_double(opts: *const gem_options_t, key: gem_option_t,
                                  value: *mut f64) -> gem_status_t;
    pub fn gem_options_get_string(opts: *const gem_options_t, key: gem_option_t,
                                  value: *mut *const c_char) -> gem_status_t;
    pub fn gem_options_get_int_array(opts: *const gem_options_t, key: gem_option_t,
                                     values: *mut i64, cap: usize, n: *mut usize)
        -> gem_status_t;
    pub fn gem_options_get_double_array(opts: *const gem_options_t, key: gem_option_t,
                                        values: *mut f64, cap: usize, n: *mut usize)
        -> gem_status_t;
    pub fn gem_options_set_runner(opts: *mut gem_options_t, fn_: gem_runner_fn,
                                  user: *mut c_void, num_devices: i32) -> gem_status_t;
    pub fn gem_options_set_progress(opts: *mut gem_options_t, fn_: gem_progress_fn,
                                    user: *mut c_void) -> gem_status_t;

    // profiles
    pub fn gem_profile_create(out: *mut *mut gem_profile_t, num_gpus: i32) -> gem_status_t;
    pub fn gem_profile_destroy(profile: *mut gem_profile_t);
    pub fn gem_profile_clone(profile: *const gem_profile_t, out: *mut *mut gem_profile_t)
        -> gem_status_t;
    pub fn gem_profile_set_curve(profile: *mut gem_profile_t, gpu: i32, k: usize,
                                 tokens: *const i64, latency_us: *const f64, cv: *const f64)
        -> gem_status_t;
    pub fn gem_profile_set_overhead(profile: *mut gem_profile_t, gpu: i32, us: f64)
        -> gem_status_t;
    pub fn gem_profile_set_interpolation(profile: *mut gem_profile_t,
                                         interp: gem_interpolation_t) -> gem_status_t;
    pub fn gem_profile_set_cost_model(profile: *mut gem_profile_t, model: gem_cost_model_t)
        -> gem_status_t;
    pub fn gem_profile_set_gpu_string(profile: *mut gem_profile_t, gpu: i32,
                                      key: *const c_char, value: *const c_char)
        -> gem_status_t;
    pub fn gem_profile_num_gpus(profile: *const gem_profile_t, num_gpus: *mut i32)
        -> gem_status_t;
    pub fn gem_profile_get_interpolation(profile: *const gem_profile_t,
                                         interp: *mut gem_interpolation_t) -> gem_status_t;
    pub fn gem_profile_get_cost_model(profile: *const gem_profile_t,
                                      model: *mut gem_cost_model_t) -> gem_status_t;
    pub fn gem_profile_get_overhead(profile: *const gem_profile_t, gpu: i32, us: *mut f64)
        -> gem_status_t;
    pub fn gem_profile_get_curve(profile: *const gem_profile_t, gpu: i32, tokens: *mut i64,
                                 latency_us: *mut f64, cap: usize, k: *mut usize)
        -> gem_status_t;
    pub fn gem_profile_get_gpu_string(profile: *const gem_profile_t, gpu: i32,
                                      key: *const c_char, value: *mut *const c_char)
        -> gem_status_t;
    pub fn gem_profile_latency(profile: *const gem_profile_t, gpu: i32, tokens: f64,
                               us: *mut f64) -> gem_status_t;
    pub fn gem_profile_speeds(profile: *const gem_profile_t, speeds: *mut f64, n: usize)
        -> gem_status_t;
    pub fn gem_profile_read(path: *const c_char, out: *mut *mut gem_profile_t) -> gem_status_t;
    pub fn gem_profile_parse(data: *const c_char, len: usize, out: *mut *mut gem_profile_t)
        -> gem_status_t;
    pub fn gem_profile_write(profile: *const gem_profile_t, path: *const c_char)
        -> gem_status_t;
    pub fn gem_profile_to_string(profile: *const gem_profile_t, out: *mut *mut c_char)
        -> gem_status_t;
    pub fn gem_profile_append(dst: *mut gem_profile_t, src: *const gem_profile_t)
        -> gem_status_t;

    // profiling backends
    pub fn gem_has_backend(backend: gem_backend_t) -> c_int;
    pub fn gem_backend_name(backend: gem_backend_t) -> *const c_char;
    pub fn gem_profile_gpus(backend: gem_backend_t, opts: *const gem_options_t,
                            out: *mut *mut gem_profile_t) -> gem_status_t;
    pub fn gem_profile_measure_alltoall(profile: *mut gem_profile_t,
                                        opts: *const gem_options_t) -> gem_status_t;
    pub fn gem_profile_add_topology(profile: *mut gem_profile_t) -> gem_status_t;

    // traces
    pub fn gem_trace_create(out: *mut *mut gem_trace_t, num_layers: i32, num_experts: i32)
        -> gem_status_t;
    pub fn gem_trace_destroy(trace: *mut gem_trace_t);
    pub fn gem_trace_clone(trace: *const gem_trace_t, out: *mut *mut gem_trace_t)
        -> gem_status_t;
    pub fn gem_trace_set(trace: *mut gem_trace_t, step: i64, layer: i32, loads: *const f64,
                         n: usize) -> gem_status_t;
    pub fn gem_trace_record(trace: *mut gem_trace_t, step: i64, layer: i32,
                            topk_ids: *const i32, n_tokens: usize, k: i32) -> gem_status_t;
    pub fn gem_trace_shape(trace: *const gem_trace_t, num_steps: *mut i64,
                           num_layers: *mut i32, num_experts: *mut i32) -> gem_status_t;
    pub fn gem_trace_get(trace: *const gem_trace_t, step: i64, layer: i32, loads: *mut f64,
                         n: usize) -> gem_status_t;
    pub fn gem_trace_validate(trace: *const gem_trace_t) -> gem_status_t;
    pub fn gem_trace_slice(trace: *const gem_trace_t, first: i64, count: i64,
                           out: *mut *mut gem_trace_t) -> gem_status_t;
    pub fn gem_trace_read(path: *const c_char, out: *mut *mut gem_trace_t) -> gem_status_t;
    pub fn gem_trace_parse(data: *const c_char, len: usize, out: *mut *mut gem_trace_t)
        -> gem_status_t;
    pub fn gem_trace_write(trace: *const gem_trace_t, path: *const c_char) -> gem_status_t;
    pub fn gem_trace_to_string(trace: *const gem_trace_t, out: *mut *mut c_char)
        -> gem_status_t;
    pub fn gem_trace_import(format: gem_import_format_t, path: *const c_char,
                            opts: *const gem_options_t, out: *mut *mut gem_trace_t,
                            note: *mut *mut c_char) -> gem_status_t;
    pub fn gem_trace_import_buffer(format: gem_import_format_t, data: *const c_char,
                                   len: usize, opts: *const gem_options_t,
                                   out: *mut *mut gem_trace_t, note: *mut *mut c_char)
        -> gem_status_t;
    pub fn gem_trace_synthesize(num_steps: i64, num_layers: i32, num_experts: i32,
                                tokens_per_step: i64, skew: f64, opts: *const gem_options_t,
                                out: *mut *mut gem_trace_t) -> gem_status_t;

    // mappings
    pub fn gem_mapping_create(out: *mut *mut gem_mapping_t, num_gpus: i32, num_layers: i32,
                              num_experts: i32) -> gem_status_t;
    pub fn gem_mapping_destroy(mapping: *mut gem_mapping_t);
    pub fn gem_mapping_clone(mapping: *const gem_mapping_t, out: *mut *mut gem_mapping_t)
        -> gem_status_t;
    pub fn gem_mapping_add(mapping: *mut gem_mapping_t, layer: i32, expert: i32, gpu: i32,
                           share: f64) -> gem_status_t;
    pub fn gem_mapping_clear_layer(mapping: *mut gem_mapping_t, layer: i32) -> gem_status_t;
    pub fn gem_mapping_set_policy_name(mapping: *mut gem_mapping_t, name: *const c_char)
        -> gem_status_t;
    pub fn gem_mapping_get_policy_name(mapping: *const gem_mapping_t, name: *mut *const c_char)
        -> gem_status_t;
    pub fn gem_mapping_shape(mapping: *const gem_mapping_t, num_gpus: *mut i32,
                             num_layers: *mut i32, num_experts: *mut i32) -> gem_status_t;
    pub fn gem_mapping_num_placements(mapping: *const gem_mapping_t, layer: i32, n: *mut usize)
        -> gem_status_t;
    pub fn gem_mapping_get(mapping: *const gem_mapping_t, layer: i32, i: usize,
                           expert: *mut i32, gpu: *mut i32, share: *mut f64) -> gem_status_t;
    pub fn gem_mapping_expert_gpu(mapping: *const gem_mapping_t, layer: i32, expert: i32,
                                  gpu: *mut i32) -> gem_status_t;
    pub fn gem_mapping_validate(mapping: *const gem_mapping_t) -> gem_status_t;
    pub fn gem_mapping_gpu_slots(mapping: *const gem_mapping_t, layer: i32, gpu: i32,
                                 slots: *mut i32) -> gem_status_t;
    pub fn gem_mapping_read(path: *const c_char, out: *mut *mut gem_mapping_t) -> gem_status_t;
    pub fn gem_mapping_parse(data: *const c_char, len: usize, out: *mut *mut gem_mapping_t)
        -> gem_status_t;
    pub fn gem_mapping_write(mapping: *const gem_mapping_t, path: *const c_char)
        -> gem_status_t;
    pub fn gem_mapping_to_string(mapping: *const gem_mapping_t, out: *mut *mut c_char)
        -> gem_status_t;
    pub fn gem_mapping_export(mapping: *const gem_mapping_t, format: gem_export_format_t,
                              path: *const c_char) -> gem_status_t;
    pub fn gem_mapping_export_string(mapping: *const gem_mapping_t,
                                     format: gem_export_format_t, out: *mut *mut c_char)
        -> gem_status_t;
    pub fn gem_mapping_export_opts(mapping: *const gem_mapping_t, format: gem_export_format_t,
                                   opts: *const gem_options_t, path: *const c_char)
        -> gem_status_t;
    pub fn gem_mapping_export_string_opts(mapping: *const gem_mapping_t,
                                          format: gem_export_format_t,
                                          opts: *const gem_options_t, out: *mut *mut c_char)
        -> gem_status_t;

    // classification
    pub fn gem_classify_experts(trace: *const gem_trace_t, opts: *const gem_options_t,
                                out: *mut *mut gem_classification_t) -> gem_status_t;
    pub fn gem_classification_destroy(cls: *mut gem_classification_t);
    pub fn gem_classification_shape(cls: *const gem_classification_t, num_steps: *mut i64,
                                    num_layers: *mut i32, num_experts: *mut i32)
        -> gem_status_t;
    pub fn gem_classification_get(cls: *const gem_classification_t, layer: i32, expert: i32,
                                  cls_out: *mut gem_expert_class_t, heavy_fraction: *mut f64,
                                  mean_load: *mut f64, mean_heavy_load: *mut f64)
        -> gem_status_t;
    pub fn gem_classification_coactivation(cls: *const gem_classification_t, layer: i32,
                                           a: i32, b: i32, steps: *mut i64) -> gem_status_t;
    pub fn gem_class_name(cls: gem_expert_class_t) -> *const c_char;

    // placement
    pub fn gem_policy_name(policy: gem_policy_t) -> *const c_char;
    pub fn gem_policy_from_name(name: *const c_char, policy: *mut gem_policy_t) -> gem_status_t;
    pub fn gem_compute_mapping(profile: *const gem_profile_t, trace: *const gem_trace_t,
                               policy: gem_policy_t, opts: *const gem_options_t,
                               cls: *const gem_classification_t,
                               out: *mut *mut gem_mapping_t) -> gem_status_t;

    // evaluation
    pub fn gem_evaluate(profile: *const gem_profile_t, trace: *const gem_trace_t,
                        mapping: *const gem_mapping_t, opts: *const gem_options_t,
                        out: *mut *mut gem_report_t) -> gem_status_t;
    pub fn gem_report_destroy(report: *mut gem_report_t);
    pub fn gem_report_get(report: *const gem_report_t, metric: gem_metric_t, value: *mut f64)
        -> gem_status_t;
    pub fn gem_report_gpu(report: *const gem_report_t, gpu: i32, busy_us: *mut f64,
                          straggler_count: *mut i64) -> gem_status_t;
    pub fn gem_report_step(report: *const gem_report_t, step: i64, us: *mut f64)
        -> gem_status_t;
    pub fn gem_report_to_json(report: *const gem_report_t, out: *mut *mut c_char)
        -> gem_status_t;
}

#[cfg(feature = "experimental")]
extern "C" {
    pub fn gem_remap(profile: *const gem_profile_t, window: *const gem_trace_t,
                     current: *const gem_mapping_t, opts: *const gem_options_t,
                     out: *mut *mut gem_remap_result_t) -> gem_status_t;
    pub fn gem_remap_result_destroy(res: *mut gem_remap_result_t);
    pub fn gem_remap_result_get(res: *const gem_remap_result_t, current_us: *mut f64,
                                remapped_us: *mut f64, unconstrained_us: *mut f64,
                                moves: *mut i64, bytes_moved: *mut u64, recommend: *mut i32)
        -> gem_status_t;
    pub fn gem_remap_result_mapping(res: *const gem_remap_result_t,
                                    mapping: *mut *const gem_mapping_t) -> gem_status_t;
    pub fn gem_drift(profile: *const gem_profile_t, built_on: *const gem_trace_t,
                     window: *const gem_trace_t, mapping: *const gem_mapping_t,
                     ratio: *mut f64) -> gem_status_t;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_matches_header() {
        unsafe {
            assert_eq!(gem_version(), GEM_VERSION_NUMBER);
        }
    }

    #[test]
    fn options_round_trip() {
        unsafe {
            let mut o: *mut gem_options_t = std::ptr::null_mut();
            assert_eq!(gem_options_create(&mut o), GEM_OK);
            assert_eq!(gem_options_set_int(o, GEM_OPT_SEED, 42), GEM_OK);
            let mut v = 0i64;
            assert_eq!(gem_options_get_int(o, GEM_OPT_SEED, &mut v), GEM_OK);
            assert_eq!(v, 42);
            assert_eq!(gem_options_set_int(o, GEM_OPT_SEED, -1), GEM_ERR_INVALID_ARGUMENT);
            assert_ne!(*gem_last_error(), 0);
            gem_options_destroy(o);
            gem_options_destroy(std::ptr::null_mut());
        }
    }
}
