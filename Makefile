# petcam: `make run` starts everything, `make test` runs the suite. Both set up what they need.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.requirements-installed
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the tests use: a real browser, ffprobe, redis-server (the fault
# tests start a scratch one on a free port; the machine's Redis is never restarted),
# caddy (the HTTPS proxy test), coturn (the TURN tests), prometheus (promtool for
# the alert rules) and mosquitto (the MQTT tests; mosquitto_passwd), and a
# Japanese font so the Japanese pages' screenshots are readable. Tests start their own
# servers on free ports; a caddy, prometheus or mosquitto installed here for the tests has
# its system service turned off.
TEST_DEBS := chromium ffmpeg redis-server caddy coturn prometheus mosquitto fonts-ipafont-gothic
# `make run CAMERAS=2`: also simulate a second camera (garden), up to 4.
CAMERAS ?= 1
# `make run PORT=8080`: serve on another port (8000 is taken by something else).
PORT ?= 8000

.PHONY: run test lint bench system-deps-test clean messages

$(STAMP): requirements.txt
	@command -v python3 >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y python3 python3-venv; }
	@test -x $(PY) || python3 -m venv $(VENV) || { $(SUDO) apt-get update && $(SUDO) apt-get install -y python3-venv && python3 -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

system-deps-test:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v ffprobe >/dev/null || missing="$$missing ffmpeg"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v caddy >/dev/null || missing="$$missing caddy"; \
	command -v turnserver >/dev/null || missing="$$missing coturn"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	{ command -v mosquitto || test -x /usr/sbin/mosquitto; } >/dev/null || missing="$$missing mosquitto"; \
	fc-list :lang=ja family 2>/dev/null | grep -qi gothic || missing="$$missing fonts-ipafont-gothic"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	  case "$$missing" in *caddy*) \
	    echo "caddy was installed for the tests only: its service (a default site on :80) is turned off"; \
	    $(SUDO) systemctl disable --now caddy.service >/dev/null 2>&1 || true;; \
	  esac; \
	  case "$$missing" in *prometheus*) \
	    $(SUDO) systemctl disable --now prometheus.service >/dev/null 2>&1 || true;; \
	  esac; \
	  case "$$missing" in *mosquitto*) \
	    echo "mosquitto was installed for the tests only: its service (a broker on :1883) is turned off"; \
	    $(SUDO) systemctl disable --now mosquitto.service >/dev/null 2>&1 || \
	      { $(SUDO) service mosquitto stop; $(SUDO) update-rc.d mosquitto disable; } >/dev/null 2>&1 || true;; \
	  esac; \
	fi

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	@# A new admin's login is printed now and again as the last lines, once the site is up.
	@login="$$($(PY) manage.py ensure_admin)" || exit 1; echo "$$login"; \
	case "$$login" in *password:*) export PETCAM_LOGIN_NOTE="$$login";; esac; \
	exec $(PY) manage.py serve --simulate --cameras $(CAMERAS) --port $(PORT)

test: $(STAMP) system-deps-test
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-logo
	$(PY) -m pytest -n 2

lint: $(STAMP)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-logo

bench: $(STAMP)
	$(PY) -m benchmarks.shm_reader_bench

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis

# Collect new or changed strings into locale/*/LC_MESSAGES/*.po (needs GNU gettext's xgettext),
# then compile every .mo in pure Python (docs/translations.md). `make run`/`make test` need
# neither: the compiled .mo files are committed.
MSG_IGNORE := -i '.venv/*' -i 'var/*' -i 'tests/*' -i 'benchmarks/*' -i 'deploy/*' -i '*/static/rest_framework/*'
messages: $(STAMP)
	$(PY) manage.py makemessages -l ja -l ru --no-obsolete --no-location $(MSG_IGNORE)
	$(PY) manage.py makemessages -d djangojs -l ja -l ru --no-obsolete --no-location $(MSG_IGNORE)
	$(PY) -m petcam_site.translations
