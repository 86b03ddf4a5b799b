# Convenience targets.  setup, demo, test and sandbox go through dev.py, which creates .venv and
# installs what it needs (the versions of requirements.lock); the others use the existing .venv.
.PHONY: setup demo test sandbox lint format bench lock lock-upgrade \
	test-unit test-integration test-e2e test-infra test-browser screenshots

PYTEST = .venv/bin/python -m pytest
# The slower tiers on 4 xdist workers as dev.py runs them (make test-e2e XDIST= runs them in one).
XDIST = -n 4 --dist loadfile

setup:
	python3 dev.py setup

demo:
	python3 dev.py demo

# Everything CI runs: lint, types, import rules, cdk synth, cfn-lint and every test tier.
test:
	python3 dev.py test

# One tier at a time (extra pytest arguments: make test-unit ARGS="-x -k tax").
test-unit:
	$(PYTEST) tests/unit $(ARGS)

test-integration:
	$(PYTEST) $(XDIST) tests/integration $(ARGS)

test-e2e:
	$(PYTEST) $(XDIST) tests/e2e $(ARGS)

test-infra:
	$(PYTEST) tests/infra $(ARGS)

# The console in Debian's headless chromium (dev.py test installs it when missing).
test-browser:
	$(PYTEST) $(XDIST) tests/browser $(ARGS)

# The console's screenshots in docs/console/ (shown by docs/console.md), taken by the browser tests.
screenshots:
	QBO_LINK_SCREENSHOTS=docs/console $(PYTEST) $(XDIST) tests/browser $(ARGS)

sandbox:
	python3 dev.py sandbox

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy . \
		&& .venv/bin/lint-imports --no-cache --no-logo

format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

bench:
	.venv/bin/python scripts/bench_sandbox.py

# requirements.lock from pyproject.toml's .[dev]: `lock` keeps the current pins and adds what a
# change to pyproject.toml needs; `lock-upgrade` moves everything to the newest allowed versions.
LOCK = CUSTOM_COMPILE_COMMAND="make lock" .venv/bin/pip-compile --quiet --extra dev --strip-extras \
	--no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

lock:
	$(LOCK)

lock-upgrade:
	$(LOCK) --upgrade
