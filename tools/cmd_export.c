/*
 * cmd_export.c - gem export: writes a mapping in a serving engine's format.
 */
#include "cli.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

static const char export_help[] =
    "Usage: gem export --format FORMAT --mapping M.json -o FILE\n"
    "\n"
    "Writes the mapping in the format a serving engine loads:\n"
    "  sglang   {\"physical_to_logical_map\": [[...] per layer]} for SGLang's\n"
    "           --init-expert-location; slots numbered GPU by GPU\n"
    "  eplb     {\"phy2log\", \"log2phy\", \"logcnt\"} as DeepSeek's and vLLM's EPLB\n"
    "  trtllm   TensorRT-LLM's load-balancer YAML\n"
    "The engines need the same number of slots on every GPU and equal replica shares; a\n"
    "mapping they cannot express is refused, and nothing is written.\n"
    "\n"
    "Options:\n"
    "  --format F       sglang, eplb or trtllm\n"
    "  --mapping F      mapping (SPEC 5 JSON)\n"
    "  -o, --output F   file to write ('-' = standard output)\n"
    "  -h, --help       show this help\n"
    "\n"
    "Example:\n"
    "  gem export --format sglang --mapping mapping.json -o expert-location.json\n";

static int export_format(const char *name, gem_export_format_t *format)
{
    if (strcmp(name, "sglang") == 0) *format = GEM_EXPORT_SGLANG;
    else if (strcmp(name, "eplb") == 0) *format = GEM_EXPORT_EPLB;
    else if (strcmp(name, "trtllm") == 0) *format = GEM_EXPORT_TRTLLM;
    else return cli_usage_error("--format: '%s' is not one of sglang, eplb, trtllm", name);
    return 0;
}

int gem_cmd_export(int argc, char **argv)
{
    const char *format_name = NULL, *mapping_path = NULL, *output = NULL;
    const cli_opt opts[] = {
        {"format", 0, CLI_STRING, &format_name, 0, 0, NULL},
        {"mapping", 0, CLI_STRING, &mapping_path, 0, 0, NULL},
        {"output", 'o', CLI_STRING, &output, 0, 0, NULL},
    };
    const cli_spec spec = {export_help, opts, sizeof opts / sizeof opts[0], 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc != CLI_RUN) return rc;
    if ((rc = cli_require(format_name, "format")) ||
        (rc = cli_require(mapping_path, "mapping")) || (rc = cli_require(output, "output")))
        return rc;
    gem_export_format_t format = GEM_EXPORT_SGLANG;
    if ((rc = export_format(format_name, &format))) return rc;

    gem_mapping_t *mapping = NULL;
    if ((rc = cli_read_mapping(mapping_path, &mapping))) return rc;
    gem_status_t st;
    if (strcmp(output, "-") == 0) {
        char *text = NULL;
        st = gem_mapping_export_string(mapping, format, &text);
        if (st == GEM_OK) {
            rc = cli_write_text(text, "-");
            gem_free(text);
        } else {
            rc = cli_fail(st);
        }
    } else {
        st = gem_mapping_export(mapping, format, output);
        if (st != GEM_OK) rc = cli_fail(st);
    }
    gem_mapping_destroy(mapping);
    return rc;
}
