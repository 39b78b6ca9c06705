"""Enumerations of gem.h as IntEnums, and the GemError exception.

The values are those of include/gem.h; they are part of the stable ABI and only ever grow, so a
status or enum value this module does not know (from a newer library) is kept as a plain int.
"""
import enum


class Status(enum.IntEnum):
    """gem_status_t."""
    OK = 0
    INVALID_ARGUMENT = 1
    INVALID_INPUT = 2
    IO = 3
    NO_MEMORY = 4
    NOT_SUPPORTED = 5
    NO_DEVICE = 6
    DEVICE = 7
    OUT_OF_RANGE = 8
    SHAPE_MISMATCH = 9
    INFEASIBLE = 10
    LIMIT = 11
    INCOMPLETE = 12
    VERSION = 13
    INTERNAL = 14
    CANCELLED = 15


class Interpolation(enum.IntEnum):
    """gem_interpolation_t: how a latency curve is read between its samples."""
    STEP = 0
    LINEAR = 1


class CostModel(enum.IntEnum):
    """gem_cost_model_t: how a GPU's time in a layer is composed from its experts."""
    PER_EXPERT = 0
    AGGREGATE = 1


class Policy(enum.IntEnum):
    """gem_policy_t: placement policies."""
    CONTIGUOUS = 0
    ROUND_ROBIN = 1
    BALANCED = 2
    SPEED_AWARE = 3
    GEM = 4
    EPLB = 5
    EXACT = 6


class Backend(enum.IntEnum):
    """gem_backend_t: profiling backends."""
    SIM = 0
    CUDA = 1
    NCCL = 2
    HWLOC = 3
    CALLBACK = 4
    MPI = 5


class ExpertClass(enum.IntEnum):
    """gem_expert_class_t."""
    COLD = 0
    CONSISTENT = 1
    TEMPORAL = 2


class DType(enum.IntEnum):
    """gem_dtype_t: element type of the expert weights."""
    BF16 = 0
    FP16 = 1
    FP8 = 2
    FP32 = 3


class Objective(enum.IntEnum):
    """gem_objective_t: objective of the iterative search."""
    MEAN = 0
    P90 = 1


class ShareRule(enum.IntEnum):
    """gem_share_rule_t: how replicas of one expert share its tokens."""
    SPEED_WEIGHTED = 0
    EQUAL = 1


class ExportFormat(enum.IntEnum):
    """gem_export_format_t: engine formats for Mapping.export()."""
    SGLANG = 0
    EPLB = 1
    TRTLLM = 2


class ImportFormat(enum.IntEnum):
    """gem_import_format_t: routing-data formats for Trace.import_()."""
    SGLANG = 0
    WIDE_CSV = 1
    TOKENS_JSONL = 2


class Metric(enum.IntEnum):
    """gem_metric_t: scalar results of an evaluation."""
    MEAN = 0
    P50 = 1
    P90 = 2
    P99 = 3
    TOTAL = 4
    LOWER_BOUND = 5
    MAX = 6
    STEPS = 7
    IMBALANCE = 8


class Option(enum.IntEnum):
    """gem_option_t: option keys (see gem.h for each one's type, default and range)."""
    THREADS = 0
    SEED = 1
    OBJECTIVE = 2
    RESTARTS = 3
    MAX_ITERATIONS = 4
    TIME_LIMIT_MS = 5
    HEAVY_FACTOR = 6
    CONSISTENT_MIN = 7
    TEMPORAL_MIN = 8
    REDUNDANT_SLOTS = 9
    SHARE_RULE = 10
    EXPERT_BYTES = 11
    GPU_MEMORY = 12
    UNEQUAL_SLOTS = 13
    MAX_MOVES = 14
    MAX_MOVE_BYTES = 15
    MIN_GAIN = 16
    TOPOLOGY_AWARE = 17
    COMM_MODEL = 18
    TOKEN_BYTES = 19
    MODEL_HIDDEN = 20
    MODEL_FFN = 21
    MODEL_DTYPE = 22
    MODEL_NAME = 23
    SIM_GPUS = 24
    SIM_SPREAD = 25
    SIM_SLOWDOWNS = 26
    SIM_TILE = 27
    SIM_BANDWIDTH_GBS = 28
    SIM_TFLOPS = 29
    SIM_OVERHEAD_US = 30
    SIM_NOISE = 31
    PROFILE_MAX_TOKENS = 32
    PROFILE_WARMUP_MS = 33
    PROFILE_REPEATS = 34
    PROFILE_DENSE = 35
    HOST_NAME = 36
    ALLTOALL_MAX_BYTES = 37
    INTERPOLATION = 38
    COST_MODEL = 39
    IMPORT_BATCH = 40
    IMPORT_STEPS = 41
    IMPORT_FILTER = 42
    IMPORT_TOPK = 43
    SIM_MEMORY_GB = 44
    FIRST_DENSE_LAYERS = 45
    EXPERTS_PER_TOKEN = 46
    BOUND_SLOTS = 47


# The value type of every option, as documented in gem.h; it picks the typed setter.
INT, DOUBLE, STRING, INT_ARRAY, DOUBLE_ARRAY = "int", "double", "string", "int array", "double array"
_DOUBLES = {Option.HEAVY_FACTOR, Option.CONSISTENT_MIN, Option.TEMPORAL_MIN, Option.MIN_GAIN,
            Option.SIM_SPREAD, Option.SIM_BANDWIDTH_GBS, Option.SIM_TFLOPS,
            Option.SIM_OVERHEAD_US, Option.SIM_NOISE, Option.SIM_MEMORY_GB}
_STRINGS = {Option.MODEL_NAME, Option.HOST_NAME, Option.IMPORT_FILTER}
OPTION_TYPES = {}
for _k in Option:
    OPTION_TYPES[_k] = (DOUBLE if _k in _DOUBLES else STRING if _k in _STRINGS
                        else INT_ARRAY if _k == Option.GPU_MEMORY
                        else DOUBLE_ARRAY if _k == Option.SIM_SLOWDOWNS else INT)
del _k

# Int options whose values are one of the enumerations: they also accept the member's name.
OPTION_ENUMS = {Option.OBJECTIVE: Objective, Option.SHARE_RULE: ShareRule,
                Option.MODEL_DTYPE: DType, Option.INTERPOLATION: Interpolation,
                Option.COST_MODEL: CostModel}


def status_of(code):
    """The Status member for a code, or the int itself when this module does not know it."""
    try:
        return Status(code)
    except ValueError:
        return int(code)


class GemError(Exception):
    """A libgem call failed.

    .status is a Status (a plain int for a status newer than these bindings) and .message the
    library's gem_last_error() text, which says what was wrong and where (file, line, field).
    """

    def __init__(self, status, message):
        self.status = status_of(status)
        self.message = message
        super().__init__(status, message)

    def __str__(self):
        name = self.status.name if isinstance(self.status, Status) else str(self.status)
        return "%s [%s]" % (self.message or "libgem error", name)

    def __repr__(self):
        return "GemError(%r, %r)" % (self.status, self.message)

    def __reduce__(self):
        return (GemError, (int(self.status), self.message))


def coerce_enum(enum_cls, value, what):
    """An enum member from a member, an int, or a name ("wide-csv", "SGLANG", "per_expert")."""
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        key = value.strip().upper().replace("-", "_")
        try:
            return enum_cls[key]
        except KeyError:
            names = ", ".join(m.name.lower() for m in enum_cls)
            raise GemError(Status.INVALID_ARGUMENT,
                           "%s: unknown name %r (valid: %s)" % (what, value, names)) from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be a %s, an int or a name, not %s"
                        % (what, enum_cls.__name__, type(value).__name__))
    try:
        return enum_cls(value)
    except ValueError:
        return int(value)  # a value from a newer library: pass it through, C checks it
