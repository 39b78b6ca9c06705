/*
 * fuzz_trace_parse.c - libFuzzer target for gem_trace_parse (SPEC 4 trace CSV).
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gem_trace_t *t = NULL;
    gem_status_t st = gem_trace_parse((const char *)data, size, &t);
    if (st == GEM_OK) {
        if (!t) fuzz_fail("gem_trace_parse", "GEM_OK without a trace");
        fuzz_exercise_trace(t);
        gem_trace_destroy(t);
    } else if (t) {
        fuzz_fail("gem_trace_parse", "failure set the output handle");
    } else if (!*gem_last_error()) {
        fuzz_fail("gem_trace_parse", "failure without a message");
    }
    return 0;
}
