/*
 * cmd_synth.c - gem synth: a synthetic routing trace (gem_trace_synthesize).
 */
#include "cli.h"
#include "commands.h"

#include <stdio.h>

static const char synth_help[] =
    "Usage: gem synth [options] -o TRACE.csv\n"
    "\n"
    "Writes a synthetic MoE routing trace (SPEC 4 CSV): for every step and layer, the tokens\n"
    "the router sent to each expert. Each layer has a few consistently popular experts, groups\n"
    "of temporal experts that become hot together in about 15-20% of the steps, and cold ones.\n"
    "Every token picks one expert (top-1); for top-k routing pass k times the tokens.\n"
    "The same options and seed always give the same trace.\n"
    "\n"
    "Options:\n"
    "  --steps S        steps (forward passes) [64]\n"
    "  --layers L       MoE layers [8]\n"
    "  --experts E      routed experts per layer [32]\n"
    "  --tokens N       expert assignments per step and layer [512]\n"
    "  --skew X         0 = uniform routing ... 1 = strongly skewed [0.6]\n"
    "  --seed N         random seed [1]\n"
    "  -o, --output F   trace file to write ('-' = standard output)\n"
    "  -h, --help       show this help\n"
    "\n"
    "Example:\n"
    "  gem synth --steps 64 --layers 8 --experts 32 --tokens 512 --skew 0.6 -o trace.csv\n";

int gem_cmd_synth(int argc, char **argv)
{
    int64_t steps = 64, layers = 8, experts = 32, tokens = 512, seed = 1;
    double skew = 0.6;
    const char *output = NULL;
    const cli_opt opts[] = {
        {"steps", 0, CLI_INT, &steps, 1, GEM_MAX_STEPS, NULL},
        {"layers", 0, CLI_INT, &layers, 1, GEM_MAX_LAYERS, NULL},
        {"experts", 0, CLI_INT, &experts, 1, GEM_MAX_EXPERTS, NULL},
        {"tokens", 0, CLI_INT, &tokens, 1, GEM_MAX_TOKENS, NULL},
        {"skew", 0, CLI_DOUBLE, &skew, 0, 1, NULL},
        {"seed", 0, CLI_INT, &seed, 0, 4611686018427387904.0, NULL},
        {"output", 'o', CLI_STRING, &output, 0, 0, NULL},
    };
    const cli_spec spec = {synth_help, opts, sizeof opts / sizeof opts[0], 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc != CLI_RUN) return rc;
    if ((rc = cli_require(output, "output"))) return rc;

    gem_options_t *o = NULL;
    gem_trace_t *trace = NULL;
    if ((rc = cli_options(&o)) || (rc = cli_set_int(o, GEM_OPT_SEED, seed, "seed"))) goto done;
    gem_status_t st = gem_trace_synthesize(steps, (int32_t)layers, (int32_t)experts, tokens,
                                           skew, o, &trace);
    if (st != GEM_OK) { rc = cli_fail(st); goto done; }
    rc = cli_write_trace(trace, output);
done:
    gem_trace_destroy(trace);
    gem_options_destroy(o);
    return rc;
}
