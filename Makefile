# Shorthands for scripts/dev.sh (the README's commands work without make installed).
.PHONY: run test build
run:
	bash scripts/dev.sh run
test:
	bash scripts/dev.sh test
build:
	bash scripts/dev.sh build
