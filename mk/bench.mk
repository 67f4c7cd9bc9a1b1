# Speed side by side (bench/, docs/performance.md): the tutorial's raw settings vs the published and fast profiles,
# in one process on one device. Defaults: this CPU, the smoke profile's tiny BERT, ratios only; one torch
# thread because OpenMP spin-waiting on a shared 2-core box made a run 12x slower (docs/performance.md);
# `published-rerun` repeats the published profile as an A/A control that shows the noise floor.
# On a GPU: make bench BENCH_ARGS="--model-shape bert-base --device cuda --seconds 10 --warmup-steps 10"
BENCH_OUT  ?= runs/bench
BENCH_ARGS ?= --device cpu --model-shape tiny --threads 1 --variant published-rerun=published

.PHONY: bench
bench: $(VENV)/.stamp ## time tutorial vs published vs fast (table + BENCH_OUT/bench.json); BENCH_ARGS for a GPU
	$(PY) -m bench --workdir $(BENCH_OUT) $(BENCH_ARGS)
