"""Shared fixtures: unique shared-memory names, free ports, a running site."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from streaming.media.shm import segment as shm_segment
from tests.support.processes import pick_free_port
from tests.support.services import redis_url_or_skip, scratch_postgres_database


@pytest.fixture(autouse=True)
def _seeded_default_camera(request):
    """The `default` camera migration 0002 seeds. A transactional test ends with a flush
    that empties every table; seed it again so test order never matters (under
    pytest-xdist it varies). tests/support/roles.py does the same for the role groups."""
    if request.node.get_closest_marker("django_db") is None and not (
            {"db", "transactional_db"} & set(request.fixturenames)):
        return
    from importlib import import_module

    from django.apps import apps

    request.getfixturevalue("_django_db_helper")
    import_module("streaming.migrations.0002_seed_default_camera").seed(apps, None)


@pytest.fixture(autouse=True)
def _fresh_login_failure_counts():
    """The per-address login cap (petcam_site/login_guard.py) counts failures in the
    cache, which outlives a test in this process: every test starts from zero. Only a
    local-memory cache is cleared (a Redis one could be somebody else's)."""
    from django.conf import settings

    if not settings.configured:
        return
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    if isinstance(caches["default"], LocMemCache):
        caches["default"].clear()


@pytest.fixture
def shm_name():
    """A unique segment name, removed after the test."""
    name = f"/petcam_test_{uuid.uuid4().hex[:10]}"
    yield name
    shm_segment.unlink(name)


@pytest.fixture
def segments():
    """Unique (stream, detections) segment names, both removed after the test."""
    tag = uuid.uuid4().hex[:8]
    names = (f"/petcam_test_{tag}_s", f"/petcam_test_{tag}_d")
    yield names
    for name in names:
        shm_segment.unlink(name)


@pytest.fixture
def free_port() -> int:
    return pick_free_port()


@pytest.fixture
def postgres_url():
    """A scratch PostgreSQL database (production mode)."""
    with scratch_postgres_database() as url:
        yield url


@pytest.fixture
def redis_url() -> str:
    return redis_url_or_skip()


@pytest.fixture(scope="session")
def two_camera_site(tmp_path_factory):
    """`serve --simulate --cameras 2`, shared by the API, multi-camera and portal tests."""
    from tests.support.two_camera_site import two_camera_site as start

    with start(tmp_path_factory.mktemp("two-cameras")) as site:
        _two_camera_site.append(site)
        yield site


# Modules that share the two-camera site (tests/support/two_camera_site.py), as node-id
# paths (relative to the repository, where pyproject.toml is).
TWO_CAMERA_MODULES = ("tests/browser/test_browser_app_shell.py",
                      "tests/browser/test_browser_csp.py",
                      "tests/integration/test_mobile_client.py",
                      "tests/integration/test_multi_camera.py",
                      "tests/integration/test_openapi.py",
                      "tests/browser/test_portal_e2e.py",
                      "tests/browser/test_events_pages.py",
                      "tests/browser/test_browser_notifications.py")
# A module moved without updating the list would start a second site on another worker.
assert all((Path(__file__).parent.parent / m).is_file() for m in TWO_CAMERA_MODULES), \
    "TWO_CAMERA_MODULES names a module that is not there"


def pytest_xdist_make_scheduler(config, log):
    """`make test` runs two pytest-xdist workers. Each takes whole modules (their module
    fixtures start one site each), and the modules sharing the two-camera site all go to
    one worker, so that site starts once and stops after its last test there."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "two-camera-site" if path in TWO_CAMERA_MODULES else path

    return ModuleScheduling(config, log)


# The shared two-camera site stops after the last test that uses it, not at the end of
# the session: its simulators would otherwise load the machine under every later module.
_two_camera_site: list = []
_last_two_camera_test: list = []


@pytest.hookimpl(trylast=True)  # after -k/-m deselection
def pytest_collection_modifyitems(session, config, items):
    users = [item for item in items if "two_camera_site" in getattr(item, "fixturenames", ())]
    _last_two_camera_test[:] = users[-1:]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield  # first the item's own fixtures (module fixtures may still use the site)
    if _last_two_camera_test and item is _last_two_camera_test[0]:
        for site in _two_camera_site:
            site.close()


os.environ.setdefault("PETCAM_LOG_QUIET", "1")


# --- short explanations for comparisons of big binary data ---------------------------

BULKY_BYTES = 4096


def _byte_size(value: object) -> int | None:
    """Total bytes in a bytes-like value or a list/tuple of them; None for anything else."""
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    if isinstance(value, list | tuple) and value and all(
            isinstance(v, bytes | bytearray | memoryview) for v in value):
        return sum(len(v) for v in value)
    return None


def _first_difference(left: bytes, right: bytes) -> int:
    return next((i for i, (a, b) in enumerate(zip(left, right, strict=False)) if a != b),
                min(len(left), len(right)))


def pytest_assertrepr_compare(op, left, right):
    """pytest's own diff of megabytes of video (difflib) runs for many minutes; say
    where the data first differs instead."""
    sizes = _byte_size(left), _byte_size(right)
    if op != "==" or None in sizes or max(sizes) < BULKY_BYTES:
        return None
    if isinstance(left, list | tuple):
        lines = [f"{len(left)} byte strings ({sizes[0]} bytes) == "
                 f"{len(right)} byte strings ({sizes[1]} bytes)"]
        for i, (a, b) in enumerate(zip(left, right, strict=False)):
            if a != b:
                lines.append(f"item {i} differs: {len(a)} vs {len(b)} bytes, "
                             f"equal for the first {_first_difference(a, b)}")
                break
        else:
            lines.append(f"equal for the first {min(len(left), len(right))} items")
        return lines
    return [f"{sizes[0]} bytes == {sizes[1]} bytes",
            f"equal for the first {_first_difference(bytes(left), bytes(right))} bytes"]
