# mk/cli.mk - end-to-end tests of the gem command-line tool (included by the Makefile).
#
#   make cli-test     runs test/cli/test_cli.sh on $(BUILD)/gem: every subcommand, the
#                     profile -> synth -> map -> eval -> export pipeline for each policy, error
#                     handling, and one pipeline under valgrind (set GEM_CLI_NO_VALGRIND=1 to
#                     leave that out)
#
# Part of `make check` through CHECK_EXTRA.

CHECK_EXTRA += cli-test

.PHONY: cli-test

cli-test: all
	@sh test/cli/test_cli.sh $(BUILD)
