# Two commands matter: `make run` (set up, prepare models, serve on 127.0.0.1:8000)
# and `make test` (set up, prepare models, run the whole test suite).
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup models run test test-unit bench locust multinode faults soak fuzz clean

setup:
	bash scripts/setup.sh

# Embedded models (GGUF -> HF dirs) and the default learned router (trained on the
# shipped RouteLLM MMLU outcomes, ~2 min); both skip when already current.
models: setup
	$(VENV)/bin/gateway models prepare

run: models
	$(VENV)/bin/gateway serve

# pytest exits 5 when it collects no test; that is a failure here like any non-zero exit.
test: models
	$(PY) -m pytest -ra

test-unit:
	$(PY) -m pytest -ra tests/unit tests/api

# Every benchmark (each bounded, each starts and stops what it needs, loopback only),
# then one summary table: load_tests/results/<name>.json/.png, summary.json, summary.md.
bench: models
	$(PY) load_tests/run_all.py

# Locust against the embedded default: starts `gateway serve`, runs a headless locust
# (LOAD_SHAPE=steady|step|burst|soak, LOCUST_USERS, LOCUST_DURATION_S), stops it; CSV,
# HTML report and summary JSON under load_tests/results/.
locust: models
	bash load_tests/run_locust.sh

# Two Ray nodes on loopback, the app across them, where each replica runs.
multinode: models
	$(PY) load_tests/multinode.py

# Fault drills under load (kill/crash/stall an engine, mid-stream disconnects, corrupt
# adapter, invalid config push, a rate-limited key across 2 ingress replicas) on the app
# deployed with `ray start --head` + `serve deploy` (stopped after; run it alone);
# prints the table and writes load_tests/results/faults.json.
faults: models
	$(PY) load_tests/faults.py

# Soak: the embedded default under the mixed SoakUser load for 30 minutes (SOAK_MINUTES),
# every replica's RSS and fds and the SQLite sizes sampled each minute; run it alone.
# Writes load_tests/results/soak.json and soak.png.
soak: models
	$(PY) load_tests/soak.py --minutes $${SOAK_MINUTES:-30}

# Fuzz: 10,000 requests generated from the gateway's own request models (well-formed and
# malformed: bad JSON, wrong types, huge numbers, deep nesting, odd headers, methods, paths,
# oversized bodies) against the app deployed with keys on; then a health check. Run it alone.
# Writes load_tests/results/fuzz.json; fails on a 5xx (a documented 503 aside), a hang, or an
# error body that is not OpenAI-shaped.
fuzz: models
	$(PY) load_tests/fuzz.py
