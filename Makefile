# make run   - set up everything (venv, packages, database, demo) and serve on 127.0.0.1
# make test  - the whole test suite (TELEMED_TEST_DATABASE_URL selects PostgreSQL)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMPS := .make
FLASK  := $(BIN)/flask --app wsgi

PO_FILES := $(wildcard telemed/translations/*/LC_MESSAGES/messages.po)
MO_FILES := $(PO_FILES:.po=.mo)
JS_FILES := $(wildcard static/js/*.js static/css/*.css tests/browser/cornerstone/*.js tests/browser/cornerstone/*.html tests/browser/cornerstone/shims/*.cjs) static/build.mjs

.PHONY: run test deps lint format assets translations messages test-tools bench clean

run: deps
	$(FLASK) db upgrade
	$(FLASK) demo seed
	$(FLASK) serve

test: deps test-tools
	$(BIN)/python -m pytest $(PYTEST_ARGS)

deps: $(STAMPS)/python assets translations

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMPS)/python: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@mkdir -p $(STAMPS) && touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

static/dist/manifest.json: node_modules/.package-lock.json $(JS_FILES)
	node static/build.mjs

assets: static/dist/manifest.json

translations: $(MO_FILES)

%.mo: %.po $(STAMPS)/python
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@ >/dev/null

# After changing user-facing text: extract it, then translate the new entries in each .po.
messages: $(STAMPS)/python
	$(BIN)/pybabel extract -F babel.cfg -k _l --no-location --sort-output \
	  --project telemed -o telemed/translations/messages.pot .
	$(BIN)/pybabel update -i telemed/translations/messages.pot -d telemed/translations \
	  --no-fuzzy-matching --ignore-obsolete

# The browser tests drive Debian's Chromium, the call's TURN test runs a real coturn, and
# the DICOM node's tests run dcmtk's storescu/findscu and a real Orthanc: install whichever
# is missing (command:package).
# A Chinese font too (a file, not a command), or Chinese pages screenshot as boxes.
TEST_TOOLS := chromium:chromium turnserver:coturn storescu:dcmtk Orthanc:orthanc \
  /usr/share/fonts/truetype/wqy/wqy-microhei.ttc:fonts-wqy-microhei

test-tools:
	@missing=""; for tool in $(TEST_TOOLS); do \
	  what=$${tool%%:*}; \
	  case $$what in /*) test -e $$what ;; *) command -v $$what >/dev/null 2>&1 ;; esac \
	    || missing="$$missing $${tool#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian's$$missing for the tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

lint: $(STAMPS)/python
	$(BIN)/ruff check .
	$(BIN)/ruff format --check telemed tests bench

format: $(STAMPS)/python
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format telemed tests bench

bench: deps
	$(BIN)/python bench/booking.py
	$(BIN)/python bench/live.py

clean:
	rm -rf $(VENV) $(STAMPS) node_modules static/dist
