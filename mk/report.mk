# Reports: compare runs side by side, seed stability, the published-results card (report/).
RUNS          ?=
OUT           ?= reports/compare
WINDOW        ?=
SPREAD        ?=
FORMAT        ?= text
RECORD        ?=
SEEDS         ?= 5
STABILITY_OUT ?= runs/stability-$(PROFILE)

.PHONY: compare stability card card-check
compare: $(VENV)/.stamp ## headline verdicts + report.md/.html + charts for RUNS="runs/a runs/b" into OUT (default reports/compare); SPREAD=runs/stability-x measures noise; FORMAT=json; RECORD=1 adds them to results/
	@test -n "$(RUNS)" || { echo 'usage: make compare RUNS="runs/npu runs/a100" [OUT=reports/compare] [SPREAD="runs/stability-npu ..."] [FORMAT=json] [WINDOW=N] [RECORD=1]' >&2; exit 2; }
	$(PY) -m report.compare $(RUNS) --out $(OUT) --format $(FORMAT) $(if $(WINDOW),--window $(WINDOW)) $(if $(SPREAD),--spread $(SPREAD)) $(if $(RECORD),--record)

stability: $(VENV)/.stamp ## train PROFILE over SEEDS seeds (default 5) into STABILITY_OUT: mean ± std of accuracy/MCC, failed runs; ARGS="--device cuda --set k=v"
	$(PY) -m report.stability --profile $(PROFILE) --seeds $(SEEDS) --out $(STABILITY_OUT) $(ARGS)

card: $(VENV)/.stamp ## regenerate results/published.md from verify/published.json + results/measured.json
	$(PY) -m report.card

card-check: $(VENV)/.stamp ## fail when results/published.md is out of date
	$(PY) -m report.card --check
