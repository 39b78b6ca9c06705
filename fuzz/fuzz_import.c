/*
 * fuzz_import.c - libFuzzer target for gem_trace_import_buffer, built once per import format:
 * compile with -DFUZZ_IMPORT_FORMAT=GEM_IMPORT_SGLANG (or _WIDE_CSV, _TOKENS_JSONL).
 *
 * Importers draw steps from aggregate counts; the options keep that small so that a fuzz
 * input cannot ask for minutes of sampling. An imported trace must be complete and survive a
 * round trip through the SPEC 4 writer and reader.
 */
#include "fuzz_common.h"

#ifndef FUZZ_IMPORT_FORMAT
#  error "define FUZZ_IMPORT_FORMAT to a gem_import_format_t"
#endif

static gem_options_t *fuzz_opts[2];

static void fuzz_setup(void)
{
    for (int i = 0; i < 2; i++) {
        FUZZ_MUST(gem_options_create(&fuzz_opts[i]));
        FUZZ_MUST(gem_options_set_int(fuzz_opts[i], GEM_OPT_IMPORT_STEPS, 3));
        FUZZ_MUST(gem_options_set_int(fuzz_opts[i], GEM_OPT_IMPORT_BATCH, 8));
        FUZZ_MUST(gem_options_set_int(fuzz_opts[i], GEM_OPT_IMPORT_TOPK, 2));
    }
    /* The second set filters wide CSV rows, as `gem import --filter` does. */
    FUZZ_MUST(gem_options_set_string(fuzz_opts[1], GEM_OPT_IMPORT_FILTER, "dataset=a"));
}

static void fuzz_import_once(const uint8_t *data, size_t size, const gem_options_t *opts)
{
    gem_trace_t *t = NULL;
    char *note = NULL;
    gem_status_t st = gem_trace_import_buffer(FUZZ_IMPORT_FORMAT, (const char *)data, size, opts,
                                              &t, &note);
    if (st == GEM_OK) {
        if (!t) fuzz_fail("gem_trace_import_buffer", "GEM_OK without a trace");
        if (!note) fuzz_fail("gem_trace_import_buffer", "GEM_OK without a note");
        fuzz_exercise_trace(t);
        gem_trace_destroy(t);
        gem_free(note);
    } else {
        if (t) fuzz_fail("gem_trace_import_buffer", "failure set the output handle");
        if (note) fuzz_fail("gem_trace_import_buffer", "failure set the note");
        if (!*gem_last_error()) fuzz_fail("gem_trace_import_buffer", "failure without a message");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_opts[0]) fuzz_setup();
    fuzz_import_once(data, size, fuzz_opts[0]);
    if (FUZZ_IMPORT_FORMAT == GEM_IMPORT_WIDE_CSV) fuzz_import_once(data, size, fuzz_opts[1]);
    /* Without a note pointer the call must behave the same (no leak of the note). */
    gem_trace_t *t = NULL;
    if (gem_trace_import_buffer(FUZZ_IMPORT_FORMAT, (const char *)data, size, fuzz_opts[0], &t,
                                NULL) == GEM_OK)
        gem_trace_destroy(t);
    return 0;
}
