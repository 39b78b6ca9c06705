//! Safe Rust bindings of libgem: variability-aware placement of Mixture-of-Experts experts on
//! GPUs. Every handle of `include/gem.h` is a type that frees its C object on drop; every
//! fallible call returns `Result<T, gem::Error>` carrying the status and the library's message
//! (which says what was wrong and where). No panic ever unwinds into C: the runner and progress
//! callbacks catch it and report a failure instead.
//!
//! ```no_run
//! let profile = gem::Profile::sim(4, 0.077, 1)?;
//! let trace = gem::Trace::import(gem::ImportFormat::Sglang, "expert_distribution.json", None)?;
//! let mut opts = gem::Options::new()?;
//! opts.set_int(gem::Opt::Seed, 1)?;
//! let mapping = gem::compute_mapping(&profile, &trace, gem::Policy::Gem, Some(&opts), None)?;
//! let report = gem::evaluate(&profile, &trace, &mapping, None)?;
//! println!("mean {:.1} us, p90 {:.1} us", report.mean(), report.p90());
//! mapping.export(gem::ExportFormat::Sglang, "expert_location.json")?;
//! # Ok::<(), gem::Error>(())
//! ```
//!
//! Builds with Rust 1.63 and has no dependency besides `gem-sys`.

pub use gem_sys as sys;

mod classify;
mod error;
mod mapping;
mod options;
mod profile;
mod report;
mod trace;
#[cfg(feature = "experimental")]
mod remap;

pub use classify::{classify, Classification, ExpertInfo};
pub use error::{last_error, Error, Result, Status};
pub use mapping::{Mapping, Placement};
pub use options::Options;
pub use profile::Profile;
pub use report::{evaluate, Report};
pub use trace::Trace;
#[cfg(feature = "experimental")]
pub use remap::{drift, remap, RemapResult};

use std::os::raw::c_int;
use std::str::FromStr;

use error::{c_string, check, from_c_static};

/// GEM_VERSION_NUMBER of the loaded library: 10000 * major + 100 * minor + patch.
pub fn version() -> u32 {
    // SAFETY: no arguments, thread-safe.
    unsafe { sys::gem_version() as u32 }
}

/// Version string of the loaded library ("1.0.0").
pub fn version_string() -> String {
    // SAFETY: returns a static string.
    unsafe { from_c_static(sys::gem_version_string()) }
}

macro_rules! c_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $val:path => $text:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum $name { $($(#[$vm])* $var = $val),* }

        impl $name {
            /// Every value, in the header's order.
            pub const ALL: &'static [$name] = &[$($name::$var),*];

            /// The C value.
            pub fn raw(self) -> c_int {
                self as c_int
            }

            /// The value of a C value, None for one this crate does not know.
            pub fn from_raw(v: c_int) -> Option<$name> {
                match v {
                    $(x if x == $val => Some($name::$var),)*
                    _ => None,
                }
            }

            /// Lower-case name, as the command-line tool spells it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $text),* }
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<$name> {
                let key = s.trim().to_ascii_lowercase().replace('-', "_");
                $(if key == $text { return Ok($name::$var); })*
                let names: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                Err(error::invalid(format!(
                    "{}: unknown name {:?} (valid: {})", stringify!($name), s, names.join(", "))))
            }
        }
    };
}

c_enum! {
    /// How a latency curve is read between its samples (SPEC 2).
    Interpolation { Step = sys::GEM_INTERP_STEP => "step", Linear = sys::GEM_INTERP_LINEAR => "linear" }
}
c_enum! {
    /// How a GPU's time in a layer is composed from its experts (SPEC 2).
    CostModel {
        PerExpert = sys::GEM_COST_PER_EXPERT => "per_expert",
        Aggregate = sys::GEM_COST_AGGREGATE => "aggregate",
    }
}
c_enum! {
    /// Placement policies.
    Policy {
        Contiguous = sys::GEM_POLICY_CONTIGUOUS => "contiguous",
        RoundRobin = sys::GEM_POLICY_ROUND_ROBIN => "round_robin",
        Balanced = sys::GEM_POLICY_BALANCED => "balanced",
        SpeedAware = sys::GEM_POLICY_SPEED_AWARE => "speed_aware",
        Gem = sys::GEM_POLICY_GEM => "gem",
        Eplb = sys::GEM_POLICY_EPLB => "eplb",
        Exact = sys::GEM_POLICY_EXACT => "exact",
    }
}
c_enum! {
    /// Profiling backends.
    Backend {
        Sim = sys::GEM_BACKEND_SIM => "sim",
        Cuda = sys::GEM_BACKEND_CUDA => "cuda",
        Nccl = sys::GEM_BACKEND_NCCL => "nccl",
        Hwloc = sys::GEM_BACKEND_HWLOC => "hwloc",
        Callback = sys::GEM_BACKEND_CALLBACK => "callback",
        Mpi = sys::GEM_BACKEND_MPI => "mpi",
    }
}
c_enum! {
    /// Expert classes of the GEM classification.
    ExpertClass {
        Cold = sys::GEM_CLASS_COLD => "cold",
        Consistent = sys::GEM_CLASS_CONSISTENT => "consistent",
        Temporal = sys::GEM_CLASS_TEMPORAL => "temporal",
    }
}
c_enum! {
    /// Element type of the expert weights.
    DType {
        Bf16 = sys::GEM_DTYPE_BF16 => "bf16",
        Fp16 = sys::GEM_DTYPE_FP16 => "fp16",
        Fp8 = sys::GEM_DTYPE_FP8 => "fp8",
        Fp32 = sys::GEM_DTYPE_FP32 => "fp32",
    }
}
c_enum! {
    /// Objectives of the iterative search.
    Objective { Mean = sys::GEM_OBJECTIVE_MEAN => "mean", P90 = sys::GEM_OBJECTIVE_P90 => "p90" }
}
c_enum! {
    /// How replicas of one expert share its tokens.
    ShareRule {
        SpeedWeighted = sys::GEM_SHARES_SPEED_WEIGHTED => "speed_weighted",
        Equal = sys::GEM_SHARES_EQUAL => "equal",
    }
}
c_enum! {
    /// Engine formats for Mapping::export.
    ExportFormat {
        Sglang = sys::GEM_EXPORT_SGLANG => "sglang",
        Eplb = sys::GEM_EXPORT_EPLB => "eplb",
        Trtllm = sys::GEM_EXPORT_TRTLLM => "trtllm",
    }
}
c_enum! {
    /// Routing-data formats for Trace::import.
    ImportFormat {
        Sglang = sys::GEM_IMPORT_SGLANG => "sglang",
        WideCsv = sys::GEM_IMPORT_WIDE_CSV => "wide_csv",
        TokensJsonl = sys::GEM_IMPORT_TOKENS_JSONL => "tokens_jsonl",
    }
}
c_enum! {
    /// Scalar results of an evaluation (microseconds except STEPS and IMBALANCE).
    Metric {
        Mean = sys::GEM_METRIC_MEAN => "mean",
        P50 = sys::GEM_METRIC_P50 => "p50",
        P90 = sys::GEM_METRIC_P90 => "p90",
        P99 = sys::GEM_METRIC_P99 => "p99",
        Total = sys::GEM_METRIC_TOTAL => "total",
        LowerBound = sys::GEM_METRIC_LOWER_BOUND => "lower_bound",
        Max = sys::GEM_METRIC_MAX => "max",
        Steps = sys::GEM_METRIC_STEPS => "steps",
        Imbalance = sys::GEM_METRIC_IMBALANCE => "imbalance",
    }
}
c_enum! {
    /// Option keys (gem_option_t); gem.h gives each one's type, default and range.
    Opt {
        Threads = sys::GEM_OPT_THREADS => "threads",
        Seed = sys::GEM_OPT_SEED => "seed",
        Objective = sys::GEM_OPT_OBJECTIVE => "objective",
        Restarts = sys::GEM_OPT_RESTARTS => "restarts",
        MaxIterations = sys::GEM_OPT_MAX_ITERATIONS => "max_iterations",
        TimeLimitMs = sys::GEM_OPT_TIME_LIMIT_MS => "time_limit_ms",
        HeavyFactor = sys::GEM_OPT_HEAVY_FACTOR => "heavy_factor",
        ConsistentMin = sys::GEM_OPT_CONSISTENT_MIN => "consistent_min",
        TemporalMin = sys::GEM_OPT_TEMPORAL_MIN => "temporal_min",
        RedundantSlots = sys::GEM_OPT_REDUNDANT_SLOTS => "redundant_slots",
        ShareRule = sys::GEM_OPT_SHARE_RULE => "share_rule",
        ExpertBytes = sys::GEM_OPT_EXPERT_BYTES => "expert_bytes",
        GpuMemory = sys::GEM_OPT_GPU_MEMORY => "gpu_memory",
        UnequalSlots = sys::GEM_OPT_UNEQUAL_SLOTS => "unequal_slots",
        MaxMoves = sys::GEM_OPT_MAX_MOVES => "max_moves",
        MaxMoveBytes = sys::GEM_OPT_MAX_MOVE_BYTES => "max_move_bytes",
        MinGain = sys::GEM_OPT_MIN_GAIN => "min_gain",
        TopologyAware = sys::GEM_OPT_TOPOLOGY_AWARE => "topology_aware",
        CommModel = sys::GEM_OPT_COMM_MODEL => "comm_model",
        TokenBytes = sys::GEM_OPT_TOKEN_BYTES => "token_bytes",
        ModelHidden = sys::GEM_OPT_MODEL_HIDDEN => "model_hidden",
        ModelFfn = sys::GEM_OPT_MODEL_FFN => "model_ffn",
        ModelDtype = sys::GEM_OPT_MODEL_DTYPE => "model_dtype",
        ModelName = sys::GEM_OPT_MODEL_NAME => "model_name",
        SimGpus = sys::GEM_OPT_SIM_GPUS => "sim_gpus",
        SimSpread = sys::GEM_OPT_SIM_SPREAD => "sim_spread",
        SimSlowdowns = sys::GEM_OPT_SIM_SLOWDOWNS => "sim_slowdowns",
        SimTile = sys::GEM_OPT_SIM_TILE => "sim_tile",
        SimBandwidthGbs = sys::GEM_OPT_SIM_BANDWIDTH_GBS => "sim_bandwidth_gbs",
        SimTflops = sys::GEM_OPT_SIM_TFLOPS => "sim_tflops",
        SimOverheadUs = sys::GEM_OPT_SIM_OVERHEAD_US => "sim_overhead_us",
        SimNoise = sys::GEM_OPT_SIM_NOISE => "sim_noise",
        ProfileMaxTokens = sys::GEM_OPT_PROFILE_MAX_TOKENS => "profile_max_tokens",
        ProfileWarmupMs = sys::GEM_OPT_PROFILE_WARMUP_MS => "profile_warmup_ms",
        ProfileRepeats = sys::GEM_OPT_PROFILE_REPEATS => "profile_repeats",
        ProfileDense = sys::GEM_OPT_PROFILE_DENSE => "profile_dense",
        HostName = sys::GEM_OPT_HOST_NAME => "host_name",
        AlltoallMaxBytes = sys::GEM_OPT_ALLTOALL_MAX_BYTES => "alltoall_max_bytes",
        Interpolation = sys::GEM_OPT_INTERPOLATION => "interpolation",
        CostModel = sys::GEM_OPT_COST_MODEL => "cost_model",
        ImportBatch = sys::GEM_OPT_IMPORT_BATCH => "import_batch",
        ImportSteps = sys::GEM_OPT_IMPORT_STEPS => "import_steps",
        ImportFilter = sys::GEM_OPT_IMPORT_FILTER => "import_filter",
        ImportTopk = sys::GEM_OPT_IMPORT_TOPK => "import_topk",
        SimMemoryGb = sys::GEM_OPT_SIM_MEMORY_GB => "sim_memory_gb",
        FirstDenseLayers = sys::GEM_OPT_FIRST_DENSE_LAYERS => "first_dense_layers",
        ExpertsPerToken = sys::GEM_OPT_EXPERTS_PER_TOKEN => "experts_per_token",
        BoundSlots = sys::GEM_OPT_BOUND_SLOTS => "bound_slots",
    }
}

impl Status {
    /// Short constant description (same as [`Status::description`]).
    pub fn as_string(self) -> String {
        self.description()
    }
}

impl Policy {
    /// The library's name of the policy ("gem", "balanced", ...).
    pub fn name(self) -> String {
        // SAFETY: returns a static string for any value.
        unsafe { from_c_static(sys::gem_policy_name(self.raw())) }
    }

    /// The policy the library knows by this name; its error lists the valid names.
    pub fn from_name(name: &str) -> Result<Policy> {
        let c = c_string(name, "policy name")?;
        let mut raw: c_int = 0;
        // SAFETY: c is NUL-terminated, raw is a valid out pointer.
        check(unsafe { sys::gem_policy_from_name(c.as_ptr(), &mut raw) })?;
        Policy::from_raw(raw)
            .ok_or_else(|| Error::new(Status::NotSupported, format!("policy {} is newer than these bindings", raw)))
    }
}

impl ExpertClass {
    /// The library's name of the class ("cold", "consistent", "temporal").
    pub fn name(self) -> String {
        // SAFETY: returns a static string for any value.
        unsafe { from_c_static(sys::gem_class_name(self.raw())) }
    }
}

impl Backend {
    /// The library's name of the backend ("sim", "cuda", ...).
    pub fn name(self) -> String {
        // SAFETY: returns a static string for any value.
        unsafe { from_c_static(sys::gem_backend_name(self.raw())) }
    }

    /// Whether the backend is compiled into the loaded library.
    pub fn is_available(self) -> bool {
        // SAFETY: thread-safe query.
        unsafe { sys::gem_has_backend(self.raw()) != 0 }
    }
}

/// Whether a backend is compiled into the loaded library.
pub fn has_backend(backend: Backend) -> bool {
    backend.is_available()
}

/// Places the trace's layers and experts on the profile's GPUs with a policy. `cls` may be
/// None (policy gem then classifies the trace itself); `opts` None means defaults.
pub fn compute_mapping(profile: &Profile, trace: &Trace, policy: Policy, opts: Option<&Options>,
                       cls: Option<&Classification>) -> Result<Mapping> {
    let mut out = std::ptr::null_mut();
    // SAFETY: every handle is live for the call; out receives an owned mapping on success.
    check(unsafe {
        sys::gem_compute_mapping(profile.as_ptr(), trace.as_ptr(), policy.raw(),
                                 options::opt_ptr(opts), classify::cls_ptr(cls), &mut out)
    })?;
    Ok(unsafe { Mapping::from_raw(out) })
}
