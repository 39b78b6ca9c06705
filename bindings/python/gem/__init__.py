"""gem: Python bindings of libgem, variability-aware placement of Mixture-of-Experts experts on
GPUs (ctypes over the stable C ABI of include/gem.h; no compiled part, no dependency).

    import gem
    with gem.Profile.sim(gpus=4, spread=0.077, seed=1) as profile, \\
         gem.Trace.synthesize(64, 4, 8, tokens_per_step=256, skew=0.6, seed=1) as trace:
        mapping = gem.compute_mapping(profile, trace, policy="gem", seed=1)
        print(gem.evaluate(profile, trace, mapping).to_dict())
        mapping.export("sglang", "expert_location.json")

Errors raise gem.GemError with .status (a gem.Status) and .message (the library's explanation).
The library is found through $GEM_LIBRARY, the build tree or the system (see gem._lib).
"""
from ._types import (Backend, CostModel, DType, ExpertClass, ExportFormat, GemError,
                     ImportFormat, Interpolation, Metric, Objective, Option, Policy, ShareRule,
                     Status)
from ._core import (Classification, ExpertInfo, Mapping, Options, Placement, Profile,
                    RemapResult, Report, Trace, backend_name, class_name, classify,
                    compute_mapping, drift, evaluate, has_backend, last_error, policy_from_name,
                    policy_name, remap, status_string, version, version_string)
from ._lib import path as library_path

__version__ = "1.0.0"

__all__ = [
    "Backend", "CostModel", "DType", "ExpertClass", "ExportFormat", "GemError", "ImportFormat",
    "Interpolation", "Metric", "Objective", "Option", "Policy", "ShareRule", "Status",
    "Classification", "ExpertInfo", "Mapping", "Options", "Placement", "Profile", "RemapResult",
    "Report", "Trace", "backend_name", "class_name", "classify", "compute_mapping", "drift",
    "evaluate", "has_backend", "last_error", "library_path", "policy_from_name", "policy_name",
    "remap", "status_string", "version", "version_string",
]
