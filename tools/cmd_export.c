/*
 * cmd_export.c - gem export: writes a mapping in a serving engine's format.
 */
#include "cli.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

static const char export_help[] =
    "Usage: gem export --format FORMAT --mapping M.json -o FILE [--first-dense-layers N]\n"
    "\n"
    "Writes the mapping in the format a serving engine loads:\n"
    "  sglang   {\"physical_to_logical_map\": [[...] per layer]} for SGLang's\n"
    "           --init-expert-location; slots numbered GPU by GPU\n"
    "  eplb     {\"phy2log\", \"log2phy\", \"logcnt\"} as DeepSeek's and vLLM's EPLB\n"
    "  trtllm   TensorRT-LLM's load-balancer YAML\n"
    "The engines need the same number of slots on every GPU and equal replica shares; a\n"
    "mapping they cannot express is refused, and nothing is written.\n"
    "Engines number the model's layers, dense ones included, where the mapping has its MoE\n"
    "layers only: with --first-dense-layers N the mapping's layer l is the model's layer N + l\n"
    "(DeepSeek-V3: N = 3, 61 rows for 58 MoE layers). sglang and eplb then start with N rows\n"
    "of the trivial layout (slot j holds expert j mod E, what SGLang starts from; the engine\n"
    "routes no token through them), and trtllm's layer keys start at N. `gem import` says N\n"
    "when it drops leading dense layers.\n"
    "\n"
    "Options:\n"
    "  --format F       sglang, eplb or trtllm\n"
    "  --mapping F      mapping (SPEC 5 JSON)\n"
    "  -o, --output F   file to write ('-' = standard output)\n"
    "  --first-dense-layers N\n"
    "                   dense (non-MoE) layers before the first MoE layer, 0..65536 [0]\n"
    "  -h, --help       show this help\n"
    "\n"
    "Examples:\n"
    "  gem export --format sglang --mapping mapping.json -o expert-location.json\n"
    "  gem export --format sglang --mapping dsv3.json --first-dense-layers 3 -o loc.json\n";

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
    int64_t dense = 0;
    const cli_opt opts[] = {
        {"format", 0, CLI_STRING, &format_name, 0, 0, NULL},
        {"mapping", 0, CLI_STRING, &mapping_path, 0, 0, NULL},
        {"output", 'o', CLI_STRING, &output, 0, 0, NULL},
        {"first-dense-layers", 0, CLI_INT, &dense, 0, 65536, NULL},
    };
    const cli_spec spec = {export_help, opts, sizeof opts / sizeof opts[0], 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc != CLI_RUN) return rc;
    if ((rc = cli_require(format_name, "format")) ||
        (rc = cli_require(mapping_path, "mapping")) || (rc = cli_require(output, "output")))
        return rc;
    gem_export_format_t format = GEM_EXPORT_SGLANG;
    if ((rc = export_format(format_name, &format))) return rc;

    gem_options_t *o = NULL;
    gem_mapping_t *mapping = NULL;
    if ((rc = cli_options(&o)) ||
        (rc = cli_set_int(o, GEM_OPT_FIRST_DENSE_LAYERS, dense, "first-dense-layers")) ||
        (rc = cli_read_mapping(mapping_path, &mapping))) {
        gem_options_destroy(o);
        return rc;
    }
    gem_status_t st;
    if (strcmp(output, "-") == 0) {
        char *text = NULL;
        st = gem_mapping_export_string_opts(mapping, format, o, &text);
        if (st == GEM_OK) {
            rc = cli_write_text(text, "-");
            gem_free(text);
        } else {
            rc = cli_fail(st);
        }
    } else {
        st = gem_mapping_export_opts(mapping, format, o, output);
        if (st != GEM_OK) rc = cli_fail(st);
    }
    gem_mapping_destroy(mapping);
    gem_options_destroy(o);
    return rc;
}
