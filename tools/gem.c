/*
 * gem.c - the gem command-line tool: finds the subcommand and hands it the rest of the line.
 * Each subcommand lives in tools/cmd_<name>.c and is a thin layer over libgem.
 */
#include "cli.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} gem_command;

static int gem_cmd_version(int argc, char **argv);
static int gem_cmd_help(int argc, char **argv);

/* In the order a newcomer uses them. */
static const gem_command gem_commands[] = {
    {"profile", gem_cmd_profile, "measure (or emulate) the GPUs' expert latency curves"},
    {"topo", gem_cmd_topo, "show the GPUs' host topology"},
    {"synth", gem_cmd_synth, "write a synthetic routing trace"},
    {"import", gem_cmd_import, "convert routing data recorded by other tools into a trace"},
    {"classify", gem_cmd_classify, "classify experts as consistent, temporal or cold"},
    {"map", gem_cmd_map, "compute a mapping of experts to GPUs with one policy"},
    {"eval", gem_cmd_eval, "replay a trace through a mapping: step latencies"},
    {"compare", gem_cmd_compare, "map with every policy and compare their step latencies"},
    {"export", gem_cmd_export, "write a mapping in a serving engine's format"},
    {"remap", gem_cmd_remap, "re-map for a new trace window within a move budget (experimental)"},
    {"version", gem_cmd_version, "print the versions of the tool and the library"},
    {"help", gem_cmd_help, "show this help, or a command's (gem help map)"},
};
#define GEM_NUM_COMMANDS (sizeof gem_commands / sizeof gem_commands[0])

static void gem_print_help(FILE *f)
{
    fputs("Usage: gem <command> [options]\n"
          "\n"
          "Places Mixture-of-Experts experts on GPUs that run at different speeds.\n"
          "\n"
          "Commands:\n",
          f);
    for (size_t i = 0; i < GEM_NUM_COMMANDS; i++)
        fprintf(f, "  %-9s %s\n", gem_commands[i].name, gem_commands[i].summary);
    fputs("\n"
          "A typical session:\n"
          "  gem profile --backend sim -o profile.json\n"
          "  gem synth --steps 64 --layers 8 --experts 32 --tokens 512 --skew 0.6 -o trace.csv\n"
          "  gem map --policy gem --profile profile.json --trace trace.csv -o mapping.json\n"
          "  gem eval --profile profile.json --trace trace.csv --mapping mapping.json\n"
          "  gem compare --profile profile.json --trace trace.csv\n"
          "\n"
          "'gem <command> --help' describes a command's options. Exit status: 0 on success,\n"
          "1 when the work failed, 2 for a wrong command line.\n",
          f);
}

static const gem_command *gem_find(const char *name)
{
    for (size_t i = 0; i < GEM_NUM_COMMANDS; i++)
        if (strcmp(gem_commands[i].name, name) == 0) return &gem_commands[i];
    return NULL;
}

static int gem_cmd_version(int argc, char **argv)
{
    static const cli_spec spec = {
        "Usage: gem version\n"
        "\n"
        "Prints the version of the gem tool, of the libgem it loaded, and the profiling\n"
        "backends compiled into that library.\n",
        NULL, 0, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc != CLI_RUN) return rc;
    printf("gem %s (libgem %s)\n", GEM_VERSION_STRING, gem_version_string());
    printf("backends:");
    static const gem_backend_t backends[] = {GEM_BACKEND_SIM, GEM_BACKEND_CUDA, GEM_BACKEND_NCCL,
                                             GEM_BACKEND_HWLOC, GEM_BACKEND_CALLBACK,
                                             GEM_BACKEND_MPI};
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (gem_has_backend(backends[i])) printf(" %s", gem_backend_name(backends[i]));
    printf("\n");
    return CLI_EXIT_OK;
}

static int gem_cmd_help(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-h") != 0) {
        const gem_command *c = gem_find(argv[1]);
        if (!c) return cli_usage_error("no command '%s' (see 'gem help')", argv[1]);
        if (c->run == gem_cmd_help) { gem_print_help(stdout); return CLI_EXIT_OK; }
        char *sub[] = {argv[1], "--help", NULL};
        cli_cmd = c->name;
        return c->run(2, sub);
    }
    gem_print_help(stdout);
    return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        gem_print_help(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) name = "help";
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) name = "version";
    const gem_command *c = gem_find(name);
    if (!c) {
        fprintf(stderr, "gem: no command '%s'\nTry 'gem help'.\n", argv[1]);
        return CLI_EXIT_USAGE;
    }
    cli_cmd = c->name;
    /* The subcommand sees its own name as argv[0]. */
    char *sub0 = argv[1];
    argv[1] = (char *)c->name;
    int rc = c->run(argc - 1, argv + 1);
    argv[1] = sub0;
    fflush(stdout);
    if (ferror(stdout)) {
        fprintf(stderr, "gem %s: cannot write to standard output\n", c->name);
        return CLI_EXIT_FAIL;
    }
    return rc;
}
