# `gem eval` against an independent implementation of SPEC section 2 (test/cli/spec_eval.py).
CHECK_EXTRA += spec-test
.PHONY: spec-test
spec-test: all
	@sh test/cli/test_spec.sh $(BUILD)
