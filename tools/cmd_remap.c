/*
 * cmd_remap.c - gem remap: re-plans the mapping in service for a new trace window within a
 * migration budget (gem_remap, experimental), and says whether the change is worth making.
 *
 * gem_remap and gem_drift are declared only under GEM_EXPERIMENTAL, so this file (and only
 * this one) asks for them before gem.h is included through cli.h.
 */
#define GEM_EXPERIMENTAL
#include "cli.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

static const char remap_help[] =
    "Usage: gem remap --profile P.json --trace WINDOW.csv --current CURRENT.json -o NEW.json\n"
    "                 [--max-moves K] [--max-move-bytes B] [--expert-bytes N] [--min-gain X]\n"
    "                 [--built-on OLD.csv] [--json] [--force] [--seed N] [--threads N] [-q]\n"
    "\n"
    "EXPERIMENTAL: this command uses libgem's experimental re-mapping API; its options and\n"
    "its output (table and JSON keys) may change between minor versions.\n"
    "\n"
    "Routing drifts while a mapping is in service. Re-mapping from scratch would move most\n"
    "experts (their weights, gigabytes per layer); this command looks for a better mapping\n"
    "within a migration budget instead: swaps of experts between GPUs, each GPU keeping its\n"
    "number of experts, at most K experts moved (an expert moves when its set of GPUs\n"
    "changes) and at most B bytes copied. It prints the mean step latency on the window\n"
    "(the recent trace, SPEC 2 model) keeping the current mapping, with the constrained\n"
    "re-map, and with an unconstrained re-map (policy gem from scratch on the window, for\n"
    "reference: it is a heuristic, not a bound), the gains, the moves and bytes, and whether\n"
    "the change is recommended: it moves something and gains at least X of the current mean.\n"
    "\n"
    "NEW.json (SPEC 5 JSON) is written only when the change is recommended, or always with\n"
    "--force (then it may be a copy of the current mapping: nothing better fitted the\n"
    "budget); otherwise nothing is written and the command says to keep the current mapping.\n"
    "A NEW.json left by an earlier run is not removed: tell the answer by the output (or by\n"
    "the file only when it did not exist before).\n"
    "\n"
    "Options:\n"
    "  --profile F        GPU profile\n"
    "  --trace F          the new trace window (SPEC 4 CSV), complete\n"
    "  --current F        the mapping in service (SPEC 5 JSON), same layers and experts as\n"
    "                     the window and as many GPUs as the profile\n"
    "  -o, --output F     where to write the proposed mapping (a file, not '-')\n"
    "  --max-moves K      experts that may move, -1 = unlimited [-1]\n"
    "  --max-move-bytes B bytes that may be copied, -1 = unlimited [-1]; needs --expert-bytes\n"
    "  --expert-bytes N   bytes of one expert's weights (one layer), 0 = unknown [0]; gives\n"
    "                     the bytes moved, and the unconstrained re-map then fits each GPU's\n"
    "                     memory as the profile gives it\n"
    "  --min-gain X       relative gain, 0..1, under which no change is recommended [0.01]\n"
    "  --built-on F       the trace the current mapping was built from: also print the drift,\n"
    "                     the current mapping's mean on the window / its mean on F\n"
    "  --json             print one JSON object instead of the table: current_us,\n"
    "                     remapped_us, unconstrained_us (microseconds, full precision),\n"
    "                     gain_pct, unconstrained_gain_pct, moves, max_moves (null =\n"
    "                     unlimited), bytes_moved (null without --expert-bytes),\n"
    "                     max_move_bytes, min_gain, recommend (true/false), written (the\n"
    "                     path, or null), drift (null without --built-on), experimental: true\n"
    "  --force            write NEW.json even when no change is recommended\n"
    "  --seed N           random seed of the unconstrained re-map [1]\n"
    "  --threads N        worker threads, 0 = all cores [0]; the result does not depend on it\n"
    "  -q, --quiet        print nothing on success (not with --json)\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 on success, whether a change is recommended or not (see the output, or\n"
    "whether NEW.json was written); 1 when the work failed (a file, a shape mismatch between\n"
    "the inputs, a library call); 2 for a wrong command line.\n"
    "\n"
    "Example (move at most 8 experts; 300 MB each):\n"
    "  gem remap --profile profile.json --trace last-hour.csv --current mapping.json \\\n"
    "      --built-on trace.csv --max-moves 8 --expert-bytes 300000000 -o new-mapping.json\n";

/* What gem_remap (and gem_drift) found, and what the command did with it. */
typedef struct {
    double current_us, remapped_us, unconstrained_us;
    int64_t moves;
    uint64_t bytes;
    int32_t recommend;
    int64_t max_moves, max_bytes, expert_bytes;
    double min_gain;
    int has_drift;
    double drift;
    const char *built_on; /* path, for the table */
    const char *written;  /* path of the written mapping, or NULL */
    int64_t steps;
    int32_t G, L, E;
} remap_figures;

/* Gain of `us` over the current mean, in % of it (0 when the current mean is 0). */
static double remap_gain_pct(const remap_figures *f, double us)
{
    return f->current_us > 0 ? (f->current_us - us) / f->current_us * 100.0 : 0.0;
}

/* A failed library call on the command's inputs: the library's message, then the files it
 * was about, since a shape mismatch names no path ("trace has 3 layers x 12 experts but
 * mapping has 3 x 16"). */
static int remap_fail(gem_status_t st, const char *inputs)
{
    const char *msg = gem_last_error();
    return cli_error("%s: %s (%s)", gem_status_string(st), msg && *msg ? msg : "failed", inputs);
}

static void remap_print_json(const remap_figures *f)
{
    printf("{\"experimental\": true, \"current_us\": ");
    cli_json_number(stdout, f->current_us);
    printf(", \"remapped_us\": ");
    cli_json_number(stdout, f->remapped_us);
    printf(", \"unconstrained_us\": ");
    cli_json_number(stdout, f->unconstrained_us);
    printf(", \"gain_pct\": ");
    cli_json_number(stdout, remap_gain_pct(f, f->remapped_us));
    printf(", \"unconstrained_gain_pct\": ");
    cli_json_number(stdout, remap_gain_pct(f, f->unconstrained_us));
    printf(", \"moves\": %lld, \"max_moves\": ", (long long)f->moves);
    if (f->max_moves < 0) printf("null");
    else printf("%lld", (long long)f->max_moves);
    printf(", \"bytes_moved\": ");
    if (f->expert_bytes > 0) printf("%llu", (unsigned long long)f->bytes);
    else printf("null");
    printf(", \"max_move_bytes\": ");
    if (f->max_bytes < 0) printf("null");
    else printf("%lld", (long long)f->max_bytes);
    printf(", \"min_gain\": ");
    cli_json_number(stdout, f->min_gain);
    printf(", \"recommend\": %s, \"written\": ", f->recommend ? "true" : "false");
    cli_json_string(stdout, f->written);
    printf(", \"drift\": ");
    if (f->has_drift) cli_json_number(stdout, f->drift);
    else printf("null");
    printf(", \"steps\": %lld, \"unit\": \"us\"}\n", (long long)f->steps);
}

static void remap_print_table(const remap_figures *f)
{
    printf("gem remap (experimental): window of %lld steps, %d layers x %d experts on %d GPUs\n\n",
           (long long)f->steps, (int)f->L, (int)f->E, (int)f->G);
    printf("mean step latency on the window (us)         gain\n");
    printf("  keep the current mapping %16.3f\n", f->current_us);
    printf("  constrained re-map       %16.3f %9.2f %%\n", f->remapped_us,
           remap_gain_pct(f, f->remapped_us));
    printf("  unconstrained re-map     %16.3f %9.2f %%  (policy gem on the window, no budget)\n",
           f->unconstrained_us, remap_gain_pct(f, f->unconstrained_us));
    printf("\n");
    if (f->max_moves < 0) printf("  moves        %lld experts (no limit)\n", (long long)f->moves);
    else printf("  moves        %lld experts (at most %lld)\n", (long long)f->moves,
                (long long)f->max_moves);
    if (f->expert_bytes <= 0)
        printf("  bytes moved  unknown (no --expert-bytes)\n");
    else if (f->max_bytes < 0)
        printf("  bytes moved  %llu (no limit)\n", (unsigned long long)f->bytes);
    else
        printf("  bytes moved  %llu (at most %lld)\n", (unsigned long long)f->bytes,
               (long long)f->max_bytes);
    if (f->has_drift)
        printf("  drift        %.4f  (current mapping's mean on the window / on %s)\n", f->drift,
               f->built_on);
    printf("\n");
    double gain = remap_gain_pct(f, f->remapped_us);
    if (f->recommend)
        printf("recommend: yes, gain %.2f %% >= --min-gain %.2f %%\n", gain, f->min_gain * 100.0);
    else if (f->moves == 0)
        printf("recommend: no, nothing better within the budget: keep the current mapping\n");
    else
        printf("recommend: no, gain %.2f %% < --min-gain %.2f %%: keep the current mapping\n",
               gain, f->min_gain * 100.0);
    if (f->written)
        printf("wrote %s%s\n", f->written, f->recommend ? "" : " anyway (--force)");
    else
        printf("nothing written\n");
}

int gem_cmd_remap(int argc, char **argv)
{
    const char *profile_path = NULL, *window_path = NULL, *current_path = NULL;
    const char *output = NULL, *built_on_path = NULL;
    int64_t max_moves = -1, max_bytes = -1, expert_bytes = 0, seed = 1, threads = 0;
    double min_gain = 0.01;
    int json = 0, force = 0, quiet = 0, has_seed = 0, has_threads = 0, has_moves = 0,
        has_bytes = 0, has_expert_bytes = 0, has_min_gain = 0;
    const cli_opt opts[] = {
        {"profile", 0, CLI_STRING, &profile_path, 0, 0, NULL},
        {"trace", 0, CLI_STRING, &window_path, 0, 0, NULL},
        {"current", 0, CLI_STRING, &current_path, 0, 0, NULL},
        {"output", 'o', CLI_STRING, &output, 0, 0, NULL},
        {"max-moves", 0, CLI_INT, &max_moves, -1, 4611686018427387904.0, &has_moves},
        {"max-move-bytes", 0, CLI_INT, &max_bytes, -1, 4611686018427387904.0, &has_bytes},
        {"expert-bytes", 0, CLI_INT, &expert_bytes, 0, 4611686018427387904.0, &has_expert_bytes},
        {"min-gain", 0, CLI_DOUBLE, &min_gain, 0, 1, &has_min_gain},
        {"built-on", 0, CLI_STRING, &built_on_path, 0, 0, NULL},
        {"json", 0, CLI_FLAG, &json, 0, 0, NULL},
        {"force", 0, CLI_FLAG, &force, 0, 0, NULL},
        {"seed", 0, CLI_INT, &seed, 0, 4611686018427387904.0, &has_seed},
        {"threads", 0, CLI_INT, &threads, 0, 4096, &has_threads},
        {"quiet", 'q', CLI_FLAG, &quiet, 0, 0, NULL},
    };
    const cli_spec spec = {remap_help, opts, sizeof opts / sizeof opts[0], 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc != CLI_RUN) return rc;
    if ((rc = cli_require(profile_path, "profile")) || (rc = cli_require(window_path, "trace")) ||
        (rc = cli_require(current_path, "current")) || (rc = cli_require(output, "output")))
        return rc;
    /* the report goes to standard output, so the mapping cannot */
    if (strcmp(output, "-") == 0)
        return cli_usage_error("--output: give a file name ('-' is not accepted: the report "
                               "goes to standard output)");
    if (built_on_path && !*built_on_path) return cli_usage_error("--built-on: empty file name");
    if (json && quiet) return cli_usage_error("--json and --quiet exclude each other");
    /* gem_remap refuses this too, but in terms of GEM_OPT_*; say it in flags */
    if (max_bytes >= 0 && expert_bytes <= 0)
        return cli_usage_error("--max-move-bytes needs --expert-bytes (the bytes of one "
                               "expert's weights)");

    gem_options_t *o = NULL;
    gem_profile_t *profile = NULL;
    gem_trace_t *window = NULL, *built_on = NULL;
    gem_mapping_t *current = NULL;
    gem_remap_result_t *res = NULL;
    if ((rc = cli_options(&o))) goto done;
    if ((has_seed && (rc = cli_set_int(o, GEM_OPT_SEED, seed, "seed"))) ||
        (has_threads && (rc = cli_set_int(o, GEM_OPT_THREADS, threads, "threads"))) ||
        (has_moves && (rc = cli_set_int(o, GEM_OPT_MAX_MOVES, max_moves, "max-moves"))) ||
        (has_bytes &&
         (rc = cli_set_int(o, GEM_OPT_MAX_MOVE_BYTES, max_bytes, "max-move-bytes"))) ||
        (has_expert_bytes &&
         (rc = cli_set_int(o, GEM_OPT_EXPERT_BYTES, expert_bytes, "expert-bytes"))) ||
        (has_min_gain && (rc = cli_set_double(o, GEM_OPT_MIN_GAIN, min_gain, "min-gain"))))
        goto done;
    /* the figures below read the options back, so they show what the library used */
    gem_status_t st;
    if ((st = gem_options_get_int(o, GEM_OPT_MAX_MOVES, &max_moves)) ||
        (st = gem_options_get_int(o, GEM_OPT_MAX_MOVE_BYTES, &max_bytes)) ||
        (st = gem_options_get_int(o, GEM_OPT_EXPERT_BYTES, &expert_bytes)) ||
        (st = gem_options_get_double(o, GEM_OPT_MIN_GAIN, &min_gain))) {
        rc = cli_fail(st);
        goto done;
    }
    if ((rc = cli_read_profile(profile_path, &profile)) ||
        (rc = cli_read_trace(window_path, &window)) ||
        (rc = cli_read_mapping(current_path, &current)) ||
        (built_on_path && (rc = cli_read_trace(built_on_path, &built_on))))
        goto done;

    char inputs[1024];
    snprintf(inputs, sizeof inputs, "profile %s, window %s, current %s", profile_path,
             window_path, current_path);
    cli_progress line;
    cli_progress_start(&line, o, "remap");
    st = gem_remap(profile, window, current, o, &res);
    cli_progress_end(&line);
    if (st != GEM_OK) { rc = remap_fail(st, inputs); goto done; }

    remap_figures f;
    memset(&f, 0, sizeof f);
    f.max_moves = max_moves, f.max_bytes = max_bytes, f.expert_bytes = expert_bytes;
    f.min_gain = min_gain, f.built_on = built_on_path;
    const gem_mapping_t *proposed = NULL;
    int32_t L = 0, E = 0;
    if ((st = gem_remap_result_get(res, &f.current_us, &f.remapped_us, &f.unconstrained_us,
                                   &f.moves, &f.bytes, &f.recommend)) ||
        (st = gem_remap_result_mapping(res, &proposed)) ||
        (st = gem_mapping_shape(current, &f.G, &f.L, &f.E)) ||
        (st = gem_trace_shape(window, &f.steps, &L, &E))) {
        rc = cli_fail(st);
        goto done;
    }
    if (built_on) {
        snprintf(inputs, sizeof inputs, "built-on %s, window %s, current %s", built_on_path,
                 window_path, current_path);
        if ((st = gem_drift(profile, built_on, window, current, &f.drift))) {
            rc = remap_fail(st, inputs);
            goto done;
        }
        f.has_drift = 1;
    }
    /* write before printing: when the mapping cannot be written, the report is not printed */
    if (f.recommend || force) {
        if ((rc = cli_write_mapping(proposed, output))) goto done;
        f.written = output;
    }
    if (json) remap_print_json(&f);
    else if (!quiet) remap_print_table(&f);
done:
    gem_remap_result_destroy(res);
    gem_mapping_destroy(current);
    gem_trace_destroy(built_on);
    gem_trace_destroy(window);
    gem_profile_destroy(profile);
    gem_options_destroy(o);
    return rc;
}
