# SwanLab's own offline dashboard (swanboard) for one run's logs, on this machine only.
# A run logs for it when swanboard is installed (the default CPU stack and both images do).
RUN            ?=
DASHBOARD_HOST ?= 127.0.0.1
DASHBOARD_PORT ?= 5092

.PHONY: dashboard
dashboard: $(VENV)/.stamp ## open RUN's SwanLab charts on http://127.0.0.1:DASHBOARD_PORT (default 5092); Ctrl-C stops it
	@test -n "$(RUN)" || { echo 'usage: make dashboard RUN=runs/smoke-cpu [DASHBOARD_PORT=5092]' >&2; exit 2; }
	@test -f "$(RUN)/swanlog/runs.swanlab" || { echo "dashboard: $(RUN)/swanlog/runs.swanlab not found: the run was not logged for the dashboard (--no-swanlab, SWANLAB_MODE=offline, or swanboard missing)" >&2; \
	  echo "  fix: train it again with SwanLab on and swanboard installed (make venv), or upload it: swanlab sync $(RUN)/swanlog/run-*" >&2; exit 3; }
	$(PY) -m swanlab watch "$(RUN)/swanlog" --host $(DASHBOARD_HOST) --port $(DASHBOARD_PORT)
