# Mutation testing of the kit's core (dev/mutation.md): mutmut, one module at a time, 2 workers,
# only the tests that cover each mutant; scores held by dev/mutation_scores.json (the ratchet).
MODULES ?=

.PHONY: mutation mutation-report mutation-check mutation-record mutation-survivors
$(VENV)/.mutation-stamp: $(VENV)/.stamp requirements/mutation.txt
	$(PY) -m pip install --quiet -r requirements/mutation.txt -c requirements/cpu.txt
	touch $@

mutation: $(VENV)/.mutation-stamp ## mutation-test the core modules (MODULES="recipe.record ..." for some), then check the recorded scores
	nice -n 10 $(PY) dev/mutation_score.py run $(MODULES)
	$(PY) dev/mutation_score.py report
	$(PY) dev/mutation_score.py check

mutation-report: $(VENV)/.mutation-stamp ## per-module mutation scores and survivors of the last `make mutation`
	$(PY) dev/mutation_score.py report

mutation-check: $(VENV)/.mutation-stamp ## fail when a module's mutation score is below dev/mutation_scores.json
	$(PY) dev/mutation_score.py check

mutation-record: $(VENV)/.mutation-stamp ## record the current per-module mutation scores as the new floor
	$(PY) dev/mutation_score.py record

mutation-survivors: $(VENV)/.mutation-stamp ## re-judge only the survivors of the last runs (after adding tests; MODULES= to limit)
	nice -n 10 $(PY) dev/mutation_score.py survivors $(MODULES)
