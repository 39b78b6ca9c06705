/*
 * cmd_map.c - gem map: computes a mapping of experts to GPUs with one policy.
 */
#include "cli.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

static const char map_help[] =
    "Usage: gem map --profile P.json --trace T.csv -o MAPPING.json [options]\n"
    "\n"
    "Places every expert of every layer of the trace on the profile's GPUs with one policy\n"
    "and writes the mapping (SPEC 5 JSON). The trace must be complete.\n"
    "\n"
    "Options:\n"
    "  --policy P            contiguous, round_robin, balanced, speed_aware, eplb, gem or\n"
    "                        exact (small cases only) [gem]\n"
    "  --profile F           GPU profile (from 'gem profile')\n"
    "  --trace F             routing trace (SPEC 4 CSV)\n"
    "  -o, --output F        mapping file to write ('-' = standard output)\n"
    "  --seed N              random seed of the search [1]\n"
    "  --threads N           worker threads, 0 = all cores [0]; the result does not depend on it\n"
    "  --objective O         what the search minimises: mean or p90 step latency [mean]\n"
    "  --restarts N          randomised restarts of the gem search [4]\n"
    "  --max-iterations N    improving moves per restart, at most [100000]\n"
    "  --time-limit-ms N     wall-clock limit of the search, 0 = none [0; exact: 10000]\n"
    "  --redundant-slots R   extra expert copies per layer (replication) [0]\n"
    "  --heavy-factor X      classification (policy gem): heavy if load > X x the mean [1]\n"
    "  -q, --quiet           print nothing on success\n"
    "  -h, --help            show this help\n"
    "\n"
    "Example:\n"
    "  gem map --policy gem --profile profile.json --trace trace.csv -o mapping.json\n";

int gem_cmd_map(int argc, char **argv)
{
    const char *policy_name = "gem", *profile_path = NULL, *trace_path = NULL, *output = NULL;
    const char *objective_name = NULL;
    int64_t seed = 1, threads = 0, restarts = 0, iters = 0, time_limit = 0, redundant = 0;
    double heavy = 1.0;
    int quiet = 0, has_seed = 0, has_threads = 0, has_restarts = 0, has_iters = 0,
        has_time = 0, has_redundant = 0, has_heavy = 0;
    const cli_opt opts[] = {
        {"policy", 0, CLI_STRING, &policy_name, 0, 0, NULL},
        {"profile", 0, CLI_STRING, &profile_path, 0, 0, NULL},
        {"trace", 0, CLI_STRING, &trace_path, 0, 0, NULL},
        {"output", 'o', CLI_STRING, &output, 0, 0, NULL},
        {"seed", 0, CLI_INT, &seed, 0, 4611686018427387904.0, &has_seed},
        {"threads", 0, CLI_INT, &threads, 0, 4096, &has_threads},
        {"objective", 0, CLI_STRING, &objective_name, 0, 0, NULL},
        {"restarts", 0, CLI_INT, &restarts, 0, 1e6, &has_restarts},
        {"max-iterations", 0, CLI_INT, &iters, 1, 1e9, &has_iters},
        {"time-limit-ms", 0, CLI_INT, &time_limit, 0, 1e9, &has_time},
        {"redundant-slots", 0, CLI_INT, &redundant, 0, 1048576, &has_redundant},
        {"heavy-factor", 0, CLI_DOUBLE, &heavy, 1e-12, 1e6, &has_heavy},
        {"quiet", 'q', CLI_FLAG, &quiet, 0, 0, NULL},
    };
    const cli_spec spec = {map_help, opts, sizeof opts / sizeof opts[0], 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc != CLI_RUN) return rc;
    if ((rc = cli_require(profile_path, "profile")) || (rc = cli_require(trace_path, "trace")) ||
        (rc = cli_require(output, "output")))
        return rc;
    gem_policy_t policy;
    gem_objective_t objective = GEM_OBJECTIVE_MEAN;
    if ((rc = cli_policy(policy_name, &policy))) return rc;
    if (objective_name && (rc = cli_objective(objective_name, &objective))) return rc;

    gem_options_t *o = NULL;
    gem_profile_t *profile = NULL;
    gem_trace_t *trace = NULL;
    gem_mapping_t *mapping = NULL;
    if ((rc = cli_options(&o))) goto done;
    if ((has_seed && (rc = cli_set_int(o, GEM_OPT_SEED, seed, "seed"))) ||
        (has_threads && (rc = cli_set_int(o, GEM_OPT_THREADS, threads, "threads"))) ||
        (rc = cli_set_int(o, GEM_OPT_OBJECTIVE, objective, "objective")) ||
        (has_restarts && (rc = cli_set_int(o, GEM_OPT_RESTARTS, restarts, "restarts"))) ||
        (has_iters && (rc = cli_set_int(o, GEM_OPT_MAX_ITERATIONS, iters, "max-iterations"))) ||
        (has_time && (rc = cli_set_int(o, GEM_OPT_TIME_LIMIT_MS, time_limit, "time-limit-ms"))) ||
        (has_redundant &&
         (rc = cli_set_int(o, GEM_OPT_REDUNDANT_SLOTS, redundant, "redundant-slots"))) ||
        (has_heavy && (rc = cli_set_double(o, GEM_OPT_HEAVY_FACTOR, heavy, "heavy-factor"))))
        goto done;
    if ((rc = cli_read_profile(profile_path, &profile)) || (rc = cli_read_trace(trace_path, &trace)))
        goto done;

    double t0 = cli_now();
    cli_progress line;
    cli_progress_start(&line, o, NULL);
    cli_progress_label(&line, "map %s", gem_policy_name(policy));
    gem_status_t st = gem_compute_mapping(profile, trace, policy, o, NULL, &mapping);
    cli_progress_end(&line);
    double seconds = cli_now() - t0;
    if (st != GEM_OK) { rc = cli_fail(st); goto done; }
    if ((rc = cli_write_mapping(mapping, output))) goto done;
    if (!quiet) {
        int32_t G = 0, L = 0, E = 0;
        gem_mapping_shape(mapping, &G, &L, &E);
        /* on standard error when the mapping itself went to standard output */
        fprintf(strcmp(output, "-") == 0 ? stderr : stdout,
                "gem map: policy %s, %d layers x %d experts on %d GPUs, %.3f s -> %s\n",
                gem_policy_name(policy), (int)L, (int)E, (int)G, seconds, output);
    }
done:
    gem_mapping_destroy(mapping);
    gem_trace_destroy(trace);
    gem_profile_destroy(profile);
    gem_options_destroy(o);
    return rc;
}
