/*
 * fuzz_mapping_parse.c - libFuzzer target for gem_mapping_parse (SPEC 5 mapping JSON).
 *
 * A parsed mapping need not be valid (SPEC 1 is checked by gem_mapping_validate), but whatever
 * was read must write back and read back the same, and the engine exports must either work or
 * refuse cleanly.
 */
#include "fuzz_common.h"

static void fuzz_exercise_mapping(const gem_mapping_t *m)
{
    char *text = NULL;
    FUZZ_MUST(gem_mapping_to_string(m, &text));
    gem_mapping_t *back = NULL;
    gem_status_t st = gem_mapping_parse(text, strlen(text), &back);
    if (st != GEM_OK) {
        fprintf(stderr, "written mapping:\n%.2000s\n", text);
        fuzz_fail("gem_mapping_parse of gem_mapping_to_string", gem_status_string(st));
    }
    fuzz_same_mapping(m, back);
    char *again = NULL;
    FUZZ_MUST(gem_mapping_to_string(back, &again));
    if (strcmp(text, again) != 0) fuzz_fail("mapping round trip", "second write differs");
    gem_free(again);
    gem_free(text);
    gem_mapping_destroy(back);

    int valid = gem_mapping_validate(m) == GEM_OK;
    int32_t G, L, E;
    FUZZ_MUST(gem_mapping_shape(m, &G, &L, &E));
    for (int32_t l = 0; l < L && l < 16; l++)
        for (int32_t g = 0; g < G && g < 64; g++) {
            int32_t slots = -1;
            FUZZ_MUST(gem_mapping_gpu_slots(m, l, g, &slots));
            if (slots < 0) fuzz_fail("gem_mapping_gpu_slots", "negative slot count");
        }
    /* Exports: an invalid mapping may be refused, a valid one may be refused only as
     * something the format cannot express; either way nothing leaks. */
    for (int f = GEM_EXPORT_SGLANG; f <= GEM_EXPORT_TRTLLM; f++) {
        char *out = NULL;
        st = gem_mapping_export_string(m, (gem_export_format_t)f, &out);
        if (st == GEM_OK && !out) fuzz_fail("gem_mapping_export_string", "GEM_OK without text");
        if (valid && st != GEM_OK && st != GEM_ERR_NOT_SUPPORTED)
            fuzz_fail("gem_mapping_export_string of a valid mapping", gem_status_string(st));
        gem_free(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gem_mapping_t *m = NULL;
    gem_status_t st = gem_mapping_parse((const char *)data, size, &m);
    if (st == GEM_OK) {
        if (!m) fuzz_fail("gem_mapping_parse", "GEM_OK without a mapping");
        fuzz_exercise_mapping(m);
        gem_mapping_destroy(m);
    } else if (m) {
        fuzz_fail("gem_mapping_parse", "failure set the output handle");
    } else if (!*gem_last_error()) {
        fuzz_fail("gem_mapping_parse", "failure without a message");
    }
    return 0;
}
