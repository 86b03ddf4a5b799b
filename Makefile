# Convenience targets; each one goes through dev.py, which creates .venv and installs what it needs.
.PHONY: setup demo test sandbox lint format bench

setup:
	python3 dev.py setup

demo:
	python3 dev.py demo

test:
	python3 dev.py test

sandbox:
	python3 dev.py sandbox

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy .

format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

bench:
	.venv/bin/python scripts/bench_sandbox.py
