/*
 * cmd_import.c - gem import: converts routing data recorded by other tools into a trace.
 */
#include "cli.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

static const char import_help[] =
    "Usage: gem import --format FORMAT INPUT -o TRACE.csv [options]\n"
    "\n"
    "Converts routing data into a trace (SPEC 4 CSV). Formats:\n"
    "  sglang        SGLang's expert distribution dump: {\"logical_count\": [L][E]} (one\n"
    "                aggregate: --steps steps of --batch tokens with --topk experts each are\n"
    "                drawn from it) or [N][L][E] (one step per entry)\n"
    "  wide-csv      a CSV with columns ...,layer_idx,0,1,... (one row per iteration and\n"
    "                layer); --filter column=value keeps the matching rows\n"
    "  tokens-jsonl  one JSON record per (token, layer) with an \"experts\" list; tokens are\n"
    "                grouped --batch at a time into steps\n"
    "Notes about skipped or odd rows are printed on standard error.\n"
    "\n"
    "Options:\n"
    "  --format F       sglang, wide-csv or tokens-jsonl\n"
    "  -o, --output F   trace file to write ('-' = standard output)\n"
    "  --batch N        tokens per step [256]\n"
    "  --steps N        steps drawn from aggregate counts [64]\n"
    "  --topk K         experts per token when drawing from aggregate counts [8]\n"
    "  --filter C=V     keep only wide-csv rows whose column C equals V\n"
    "  --seed N         random seed for drawing from aggregate counts [1]\n"
    "  -h, --help       show this help\n"
    "\n"
    "Example:\n"
    "  gem import --format sglang expert_distribution.json -o trace.csv --steps 128\n";

static int import_format(const char *name, gem_import_format_t *format)
{
    if (strcmp(name, "sglang") == 0) *format = GEM_IMPORT_SGLANG;
    else if (strcmp(name, "wide-csv") == 0) *format = GEM_IMPORT_WIDE_CSV;
    else if (strcmp(name, "tokens-jsonl") == 0) *format = GEM_IMPORT_TOKENS_JSONL;
    else
        return cli_usage_error("--format: '%s' is not one of sglang, wide-csv, tokens-jsonl",
                               name);
    return 0;
}

int gem_cmd_import(int argc, char **argv)
{
    const char *format_name = NULL, *output = NULL, *filter = NULL;
    int64_t batch = 0, steps = 0, topk = 0, seed = 0;
    int has_batch = 0, has_steps = 0, has_topk = 0, has_seed = 0;
    const cli_opt opts[] = {
        {"format", 0, CLI_STRING, &format_name, 0, 0, NULL},
        {"output", 'o', CLI_STRING, &output, 0, 0, NULL},
        {"batch", 0, CLI_INT, &batch, 1, GEM_MAX_TOKENS, &has_batch},
        {"steps", 0, CLI_INT, &steps, 1, GEM_MAX_STEPS, &has_steps},
        {"topk", 0, CLI_INT, &topk, 1, 64, &has_topk},
        {"filter", 0, CLI_STRING, &filter, 0, 0, NULL},
        {"seed", 0, CLI_INT, &seed, 0, 4611686018427387904.0, &has_seed},
    };
    char *args[1];
    int nargs = 0;
    const cli_spec spec = {import_help, opts, sizeof opts / sizeof opts[0], 1, 1};
    int rc = cli_parse(&spec, argc, argv, args, &nargs);
    if (rc != CLI_RUN) return rc;
    if ((rc = cli_require(format_name, "format")) || (rc = cli_require(output, "output")))
        return rc;
    gem_import_format_t format = GEM_IMPORT_SGLANG;
    if ((rc = import_format(format_name, &format))) return rc;
    if (filter && !strchr(filter, '='))
        return cli_usage_error("--filter: '%s' is not column=value", filter);

    gem_options_t *o = NULL;
    gem_trace_t *trace = NULL;
    char *note = NULL;
    if ((rc = cli_options(&o))) goto done;
    if ((has_batch && (rc = cli_set_int(o, GEM_OPT_IMPORT_BATCH, batch, "batch"))) ||
        (has_steps && (rc = cli_set_int(o, GEM_OPT_IMPORT_STEPS, steps, "steps"))) ||
        (has_topk && (rc = cli_set_int(o, GEM_OPT_IMPORT_TOPK, topk, "topk"))) ||
        (filter && (rc = cli_set_string(o, GEM_OPT_IMPORT_FILTER, filter, "filter"))) ||
        (has_seed && (rc = cli_set_int(o, GEM_OPT_SEED, seed, "seed"))))
        goto done;
    gem_status_t st = gem_trace_import(format, args[0], o, &trace, &note);
    if (st != GEM_OK) { rc = cli_fail_file(st, "input", args[0]); goto done; }
    if (cli_nonblank(note)) {
        size_t len = strlen(note);
        fprintf(stderr, "gem import: note: %s%s", note, note[len - 1] == '\n' ? "" : "\n");
    }
    if ((rc = cli_write_trace(trace, output))) goto done;
    int64_t S = 0;
    int32_t L = 0, E = 0;
    gem_trace_shape(trace, &S, &L, &E);
    fprintf(strcmp(output, "-") == 0 ? stderr : stdout, "gem import: %lld steps x %d layers x %d experts -> %s\n", (long long)S,
            (int)L, (int)E, output);
done:
    gem_free(note);
    gem_trace_destroy(trace);
    gem_options_destroy(o);
    return rc;
}
