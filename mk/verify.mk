# verify/ suite and the doctor (docs/verify.md, docs/troubleshooting.md). verify-npu / verify-a100 (inside the images) live in mk/docker.mk.
VERIFY_OUT ?= runs/verify

.PHONY: doctor verify-cpu catalogue
doctor: $(VENV)/.stamp ## diagnose this environment: one table of checks (ok/warn/fail/n/a), evidence and fix; LOG=<file|dir|-> explains an error log instead; ARGS=--json
	$(PY) -m verify.doctor $(if $(LOG),--log '$(LOG)') $(ARGS)

verify-cpu: $(VENV)/.stamp ## run the verify suite here: environment checks, a PROFILE (default smoke) run, thresholds
	$(PY) -m pytest verify -p no:cacheprovider --profile $(PROFILE) --require-device none \
	  --run-dir $(VERIFY_OUT)/$(PROFILE)-cpu-$$(date +%Y%m%dT%H%M%S) --junitxml $(VERIFY_OUT)/junit.xml \
	  --result-json $(VERIFY_OUT)/result.json $(ARGS)

catalogue: $(VENV)/.stamp ## regenerate docs/troubleshooting.md from the doctor's catalogue
	$(PY) -m verify.doctor --markdown > docs/troubleshooting.md
