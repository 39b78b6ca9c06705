/*
 * cli.h - helpers shared by the subcommands of the gem tool (tools/cmd_*.c): a small
 * table-driven option parser with --help, readers of profiles, traces and mappings that print
 * good messages, and the one error format of the tool:
 *
 *     gem <cmd>: <status string>: <gem_last_error()>
 *
 * on standard error, with a non-zero exit status. Functions that return int return 0 when all
 * went well, or else the exit status the command should return, after printing the message.
 */
#ifndef GEM_CLI_H
#define GEM_CLI_H

#include "gem.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#  define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define CLI_PRINTF(a, b)
#endif

/* Exit statuses of the gem tool. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1  /* the work failed (a library call, a file) */
#define CLI_EXIT_USAGE 2 /* the command line was wrong */

/* Name of the running subcommand ("map"), for messages; gem.c sets it before dispatching. */
extern const char *cli_cmd;

/* ---- messages ---------------------------------------------------------------------------- */

/** Prints "gem <cmd>: <status string>: <gem_last_error()>"; returns CLI_EXIT_FAIL. */
int cli_fail(gem_status_t status);
/** As cli_fail, and names the file and its role when the library's message does not already
 *  name the path: "gem eval: invalid input: line 3: ... (trace t.csv)". */
int cli_fail_file(gem_status_t status, const char *role, const char *path);
/** Prints "gem <cmd>: <message>"; returns CLI_EXIT_FAIL. */
int cli_error(const char *fmt, ...) CLI_PRINTF(1, 2);
/** Prints "gem <cmd>: <message>" and a pointer to --help; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) CLI_PRINTF(1, 2);

/* ---- options ----------------------------------------------------------------------------- */

typedef enum {
    CLI_FLAG,   /* no value; dest is an int set to 1 */
    CLI_STRING, /* dest is a const char * pointing into argv */
    CLI_INT,    /* dest is an int64_t; the value must be an integer within [min, max] */
    CLI_DOUBLE  /* dest is a double; the value must be finite and within [min, max] */
} cli_kind;

typedef struct {
    const char *name;  /* long name without "--" */
    char short_name;   /* one-letter alias ("-o"), or 0 */
    cli_kind kind;
    void *dest;
    double min, max;   /* inclusive bounds for CLI_INT and CLI_DOUBLE */
    int *given;        /* set to 1 when the option appears; may be NULL */
} cli_opt;

typedef struct {
    const char *help;      /* the whole text that --help prints */
    const cli_opt *opts;
    size_t nopts;
    int min_args, max_args; /* positional arguments accepted */
} cli_spec;

/* cli_parse's result when the command should go on. */
#define CLI_RUN (-1)

/** Parses argv[1..argc) (argv[0] is the subcommand's name) against spec. Accepts "--name value",
 *  "--name=value", "-x value", options before or after positional arguments, and "--" to end
 *  options; a lone "-" is a positional argument. Positional arguments go to args (room for
 *  spec->max_args), their count to *nargs (may be NULL when max_args is 0). Returns CLI_RUN, or
 *  0 after printing the help (-h, --help), or CLI_EXIT_USAGE after printing what is wrong. */
int cli_parse(const cli_spec *spec, int argc, char **argv, char **args, int *nargs);

/** Usage error "missing --name" unless value is set. */
int cli_require(const char *value, const char *name);

/* ---- library objects --------------------------------------------------------------------- */

int cli_read_profile(const char *path, gem_profile_t **out);
int cli_read_trace(const char *path, gem_trace_t **out);
int cli_read_mapping(const char *path, gem_mapping_t **out);

/** Writes to path, or to standard output when path is "-". Files are written whole or not at
 *  all by the library's writers. */
int cli_write_trace(const gem_trace_t *trace, const char *path);
int cli_write_mapping(const gem_mapping_t *mapping, const char *path);
/** Writes text to standard output ("-") or to a file whole or not at all (svg_save). */
int cli_write_text(const char *text, const char *path);

/** Creates an options handle (prints the error on failure). */
int cli_options(gem_options_t **out);
/** Sets an option from the command line; a refusal names the flag (CLI_EXIT_USAGE). */
int cli_set_int(gem_options_t *opts, gem_option_t key, int64_t value, const char *flag);
int cli_set_double(gem_options_t *opts, gem_option_t key, double value, const char *flag);
int cli_set_string(gem_options_t *opts, gem_option_t key, const char *value, const char *flag);

/** Policy from its name; a usage error lists the valid names. */
int cli_policy(const char *name, gem_policy_t *policy);
/** Objective from "mean" or "p90". */
int cli_objective(const char *name, gem_objective_t *objective);

/** JSON output helpers: a number with "%.17g" (exact round trip; null when not finite) and a
 *  quoted, escaped string (null for NULL). */
void cli_json_number(FILE *f, double x);
void cli_json_string(FILE *f, const char *s);

/** Monotonic clock in seconds, for reporting how long a step took. */
double cli_now(void);

/* ---- progress on a terminal -------------------------------------------------------------- */

/* One updating line on standard error ("\r[gem] map gem: layer 12/58 (21%), 3.2 s") while a
 * long library call runs, fed by the library's progress callback. It is drawn only when
 * standard error is a terminal, so logs, pipes and tests see nothing, and erased when the
 * work ends, so the command's own output starts on a clean line. */
typedef struct {
    int on;           /* standard error is a terminal */
    double start;     /* when the work began (cli_now) */
    double drawn_at;  /* when the line was last drawn; 0 = not yet */
    int width;        /* characters now on the line, to blank them */
    char label[96];   /* what is running: "map gem", "compare 3/6 gem" */
} cli_progress;

/** Starts a progress line labelled label and, on a terminal, hooks it into opts (which may be
 *  NULL: then the line shows only what cli_progress_label says). */
void cli_progress_start(cli_progress *p, gem_options_t *opts, const char *label);
/** Changes the label and draws it (as a unit of work starts, e.g. the next policy). */
void cli_progress_label(cli_progress *p, const char *fmt, ...) CLI_PRINTF(2, 3);
/** The gem_progress_fn that draws the line (at most every 0.1 s, and at the last unit). Never
 *  cancels. user is the cli_progress. */
int cli_progress_update(void *user, const char *what, double done, double total);
/** Erases the line. Call it before printing anything else, and when the work ends. */
void cli_progress_end(cli_progress *p);

/** 1 when text holds something other than blanks. */
int cli_nonblank(const char *text);

#endif
