/*
 * commands.h - the subcommands of the gem tool. Each takes the arguments that follow `gem`
 * (argv[0] is the subcommand's own name) and returns the process exit status: 0 on success,
 * 1 when the work failed, 2 for a bad command line (see cli.h).
 */
#ifndef GEM_COMMANDS_H
#define GEM_COMMANDS_H

int gem_cmd_profile(int argc, char **argv);  /* cmd_profile.c: measure or emulate GPUs */
int gem_cmd_topo(int argc, char **argv);     /* cmd_topo.c: host topology of the GPUs */
int gem_cmd_map(int argc, char **argv);      /* cmd_map.c: compute a mapping */
int gem_cmd_eval(int argc, char **argv);     /* cmd_eval.c: replay a trace through a mapping */
int gem_cmd_compare(int argc, char **argv);  /* cmd_compare.c: every policy side by side */
int gem_cmd_export(int argc, char **argv);   /* cmd_export.c: mapping in an engine's format */
int gem_cmd_remap(int argc, char **argv);    /* cmd_remap.c: re-map in a budget (experimental) */
int gem_cmd_classify(int argc, char **argv); /* cmd_classify.c: consistent/temporal/cold */
int gem_cmd_import(int argc, char **argv);   /* cmd_import.c: routing data -> trace */
int gem_cmd_synth(int argc, char **argv);    /* cmd_synth.c: synthetic trace */

#endif
