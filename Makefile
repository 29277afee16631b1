# Hangar: `make run` to use it, `make test` to check it. Both install what is missing first.
.PHONY: run test lint setup image

run:
	@scripts/run.sh

test:
	@scripts/test.sh

lint:
	@scripts/lint.sh

setup:
	@scripts/setup.sh test

image:
	@scripts/image.sh
