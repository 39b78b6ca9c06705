/*
 * fuzz_profile_parse.c - libFuzzer target for gem_profile_parse (SPEC 3 profile JSON).
 *
 * On success the profile must serialise, read back equal, and answer the cost-model queries.
 */
#include "fuzz_common.h"

static void fuzz_exercise_profile(const gem_profile_t *p)
{
    char *text = NULL;
    FUZZ_MUST(gem_profile_to_string(p, &text));
    gem_profile_t *back = NULL;
    gem_status_t st = gem_profile_parse(text, strlen(text), &back);
    if (st != GEM_OK) {
        fprintf(stderr, "written profile:\n%.2000s\n", text);
        fuzz_fail("gem_profile_parse of gem_profile_to_string", gem_status_string(st));
    }
    fuzz_same_profile(p, back);
    char *again = NULL;
    FUZZ_MUST(gem_profile_to_string(back, &again));
    if (strcmp(text, again) != 0) fuzz_fail("profile round trip", "second write differs");
    gem_free(again);
    gem_free(text);
    gem_profile_destroy(back);

    int32_t G = 0;
    FUZZ_MUST(gem_profile_num_gpus(p, &G));
    static const double xs[] = {0, 0.5, 1, 7, 64, 100.25, 4096, 1e6};
    for (int32_t g = 0; g < G && g < 64; g++)
        for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) {
            double us = -1;
            FUZZ_MUST(gem_profile_latency(p, g, xs[i], &us));
            /* SPEC 2 extrapolates a falling tail linearly, so a time may be negative far out;
             * it is never NaN */
            if (us != us) fuzz_fail("gem_profile_latency", "NaN time");
        }
    double *speeds = malloc((size_t)G * sizeof *speeds);
    if (!speeds) fuzz_fail("malloc", NULL);
    FUZZ_MUST(gem_profile_speeds(p, speeds, (size_t)G));
    for (int32_t g = 0; g < G; g++)
        if (!(speeds[g] >= 0 && speeds[g] <= 1.0))
            fuzz_fail("gem_profile_speeds", "speed outside [0, 1]");
    free(speeds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gem_profile_t *p = NULL;
    gem_status_t st = gem_profile_parse((const char *)data, size, &p);
    if (st == GEM_OK) {
        if (!p) fuzz_fail("gem_profile_parse", "GEM_OK without a profile");
        fuzz_exercise_profile(p);
        gem_profile_destroy(p);
    } else if (p) {
        fuzz_fail("gem_profile_parse", "failure set the output handle");
    } else if (!*gem_last_error()) {
        fuzz_fail("gem_profile_parse", "failure without a message");
    }
    return 0;
}
