# aedaemon — the two commands: `make run` and `make test`. Each sets up what it needs, once.
VENV ?= .venv
PY := $(VENV)/bin/python
MODEL ?= models/default
ARGS ?=

.PHONY: run test bench model setup clean test-arm64

# The runtime only: PortAudio, liblo's tools, the package (no test tools, no PyTorch).
setup:
	@.ci/setup

run: setup
	@$(VENV)/bin/aedaemon run --model $(MODEL) --audio auto $(ARGS)

# The training tests need PyTorch: `make test` installs the train extra (torch==2.13.0, CPU).
test:
	@.ci/setup dev,train
	@.ci/jackd
	@$(PY) -m pytest -q $(ARGS)

bench:
	@.ci/setup dev
	@.ci/jackd
	@$(PY) benchmarks/run_all.py $(ARGS)

# arm64 (Raspberry Pi 4) check under qemu-user, as root: .ci/setup dev, the DSP/engine/model/protocol
# tests and renders compared with this host's .venv (see README: Deploying on a Raspberry Pi).
# Slow (emulation), so not part of .ci/run; the arm64 userland is cached in /var/tmp/aedaemon-arm64.
test-arm64:
	@tools/arm64/test-arm64.sh $(ARGS)

# Train the shipped default model from the FluidR3_GM soundfont (see README: Training).
model:
	@.ci/setup dev,train
	@$(VENV)/bin/aedaemon corpus --soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2 --out corpus/gm
	@$(VENV)/bin/aedaemon train corpus/gm --out models/default --seed 1 $(ARGS)
	@$(VENV)/bin/aedaemon evaluate models/default

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
