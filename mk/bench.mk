# Speed side by side (bench/, docs/performance.md): the tutorial's raw settings vs the published, exact and fast
# profiles, in one process on one device, with the tutorial script run twice per round (tutorial-aa: the A/A
# noise floor), each profile's kit overhead against NAME-plain (the plain Trainer script with the profile's
# TrainingArguments and data handling) and a per-step loss check of every profile with the published math.
# Defaults: this CPU, the smoke profile's tiny BERT, ratios only; one torch thread because OpenMP spin-waiting on
# a shared 2-core box made a run 12x slower (docs/performance.md).
# On a GPU: make bench BENCH_ARGS="--model-shape bert-base --device cuda --seconds 10 --warmup-steps 10"
BENCH_OUT  ?= runs/bench
BENCH_ARGS ?= --device cpu --model-shape tiny --threads 1

.PHONY: bench
bench: $(VENV)/.stamp ## time tutorial vs published vs exact vs fast, kit overhead of each, A/A noise floor, loss parity (BENCH_OUT/bench.json)
	$(PY) -m bench --workdir $(BENCH_OUT) $(BENCH_ARGS)
