"""The portal in English, Japanese and Russian (issue 17): every page is rendered in each
language, and the test fails on a template string left in English, a message without
its translation, or a compiled .mo older than its .po. Self-tests show the checks catch
what they are for. Language comes from Accept-Language or the account page (per user);
the time zone from the account page or the browser's `petcam_tz` cookie."""

from __future__ import annotations

import ast
import gettext as gnu_gettext
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Template
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.utils import timezone, translation
from django.utils.translation.template import templatize

from events.models import EventRule
from petcam_site.translations import (
    LOCALE_DIR,
    catalog,
    mo_bytes,
    parse_po,
    po_files,
)
from recordings.models import Recording
from streaming.models import Camera
from tests.support.roles import make_user
from tests.support.tokens import make_token

ROOT = Path(settings.BASE_DIR)
LANGS = ("ja", "ru")
TEMPLATE_DIRS = [ROOT / "templates"] + [ROOT / app / "templates" for app in
                                        ("streaming", "recordings", "events", "detections",
                                         "accounts", "petcam_site")]
PORTAL_TEMPLATES = sorted(p for d in TEMPLATE_DIRS if d.is_dir() for p in d.glob("*.html")) + [
    ROOT / "templates" / "admin" / "base_site.html"]  # the admin's frame around Django's own
JS_FILES = sorted(p for app in ("streaming", "recordings", "detections", "events", "petcam_site")
                  for p in (ROOT / app / "static").rglob("*.js"))
# Words that are the same in every language: the brand, units, codec words, and what the
# detector's class names are (the rule editor's placeholder).
SAME_EVERYWHERE = {"petcam", "GOP", "fps", "Mbit/s", "0 KB", "cat, dog",
                   "https://example.com/petcam", "English"}


# --- (a) catalogs: complete, and compiled ----------------------------------------------


def _template_msgids(source: str, origin: str) -> set[tuple[str | None, str]]:
    """(context, msgid) of every {% translate %} / {% blocktranslate %} in a template, as
    makemessages sees them (Django's templatize: gettext(u'...') calls)."""
    code = templatize(source, origin=origin)
    found = set()
    for name, args in re.findall(r"\b(n?p?gettext)\(((?:u'(?:[^'\\]|\\.)*'(?:, )?)+)", code):
        strings = [ast.literal_eval(s) for s in re.findall(r"u'(?:[^'\\]|\\.)*'", args)]
        context = strings.pop(0) if name.startswith(("pgettext", "npgettext")) else None
        found.add((context, strings[0]))
    return found


# gettext("...") / ngettext("...", ...) / gettext_noop("..."), strings joined with +
JS_CALL = re.compile(r"\b(?:n?gettext|gettext_noop)\(((?:\"(?:[^\"\\]|\\.)*\"\s*\+?\s*)+)[,)]")


def _js_msgids(source: str) -> set[tuple[str | None, str]]:
    found = set()
    for match in JS_CALL.finditer(source):
        parts = re.findall(r"\"(?:[^\"\\]|\\.)*\"", match.group(1))
        found.add((None, "".join(ast.literal_eval(p) for p in parts)))
    return found


def _catalog_keys(lang: str, domain: str) -> dict[tuple[str | None, str], object]:
    return {(e.msgctxt, e.msgid): e
            for e in parse_po(LOCALE_DIR / lang / "LC_MESSAGES" / f"{domain}.po")[1:]}


def _missing(used: set[tuple[str | None, str]], lang: str, domain: str) -> list[str]:
    entries = _catalog_keys(lang, domain)
    return [f"{lang}/{domain}: {key[1]!r}" + (" (empty or fuzzy)" if key in entries else "")
            for key in sorted(used, key=str)
            if key not in entries or not entries[key].translated]


def test_every_template_and_js_string_has_its_translation():
    used_templates = set().union(*(_template_msgids(p.read_text(), str(p))
                                   for p in PORTAL_TEMPLATES))
    used_js = set().union(*(_js_msgids(p.read_text()) for p in JS_FILES))
    assert len(used_templates) > 150 and len(used_js) > 30, (len(used_templates), len(used_js))
    missing = [m for lang in LANGS for m in (_missing(used_templates, lang, "django")
                                             + _missing(used_js, lang, "djangojs"))]
    assert not missing, "untranslated (run `make messages`, translate, recompile):\n" + \
        "\n".join(missing)


def test_every_catalog_entry_is_translated_with_every_plural_form():
    for po in po_files():
        entries = parse_po(po)
        plural_forms = re.search(r"nplurals=(\d+)", entries[0].msgstr[0])
        assert plural_forms, po
        for e in entries[1:]:
            assert e.translated, f"{po}: {e.msgid!r} has no translation (or is fuzzy)"
            if e.msgid_plural is not None:
                assert sorted(e.msgstr) == list(range(int(plural_forms.group(1)))), (po, e.msgid)
            for name in re.findall(r"%\((\w+)\)", e.msgid):
                assert all(f"%({name})" in s for s in e.msgstr.values()), (po, e.msgid, name)


def test_compiled_catalogs_are_up_to_date():
    files = po_files()
    assert {p.parent.parent.name for p in files} == set(LANGS), files
    for po in files:
        mo = po.with_suffix(".mo")
        assert mo.exists() and mo.read_bytes() == mo_bytes(catalog(parse_po(po))), \
            f"{mo} is stale: run `python -m petcam_site.translations`"
        # ...and is a file GNU gettext (Django's reader) takes
        with mo.open("rb") as f:
            assert gnu_gettext.GNUTranslations(f)._catalog


def test_the_catalog_checks_can_fail(tmp_path):
    src = '{% load i18n %}<p>{% translate "Not in any catalog" %}</p>{% translate "Live" %}'
    used = _template_msgids(src, "snippet.html")
    assert used == {(None, "Not in any catalog"), (None, "Live")}
    assert _missing(used, "ja", "django") == ["ja/django: 'Not in any catalog'"]
    assert _js_msgids('x = gettext("Only " +\n  "here");') == {(None, "Only here")}
    assert _js_msgids('ngettext("%(n)s cat", "%(n)s cats", n)') == {(None, "%(n)s cat")}
    po = tmp_path / "django.po"
    po.write_text('msgid ""\nmsgstr "Plural-Forms: nplurals=1; plural=0;\\n"\n\n'
                  '#, fuzzy\nmsgid "Live"\nmsgstr "ライブ"\n\nmsgid "Open"\nmsgstr ""\n')
    assert [e.translated for e in parse_po(po)[1:]] == [False, False]
    assert catalog(parse_po(po)) == {"": "Plural-Forms: nplurals=1; plural=0;\n"}


# --- (b) every page, rendered in each language -----------------------------------------


class _VisibleText(HTMLParser):
    """Text nodes and the attributes people read (title, aria-label, placeholder, alt),
    without scripts, styles and code samples."""

    SKIP = {"script", "style", "code"}
    ATTRS = {"title", "aria-label", "placeholder", "alt"}

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        for name, value in attrs:
            if name in self.ATTRS and value:
                self.texts.append(" ".join(value.split()))

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1

    def handle_data(self, data):
        text = " ".join(data.split())
        if text and not self.skipping:
            self.texts.append(text)


def visible_texts(html: str) -> list[str]:
    parser = _VisibleText()
    parser.feed(html.split("</head>", 1)[-1] if "</head>" in html else html)
    return parser.texts


def template_phrases(source: str) -> set[str]:
    """The English a template shows by itself: its visible text between Django tags
    (a string inside {% translate %} is not one; the catalog checks cover those)."""
    marked = re.sub(r"{%.*?%}|{{.*?}}|{#.*?#}", "\x1f", source, flags=re.S)
    return {part.strip() for text in visible_texts(marked) for part in text.split("\x1f")
            if re.search(r"[A-Za-z]{2}", part)}


def english_leftovers(english: str, other: str, template_sources: list[str]) -> list[str]:
    """Text the page shows unchanged in the other language although it comes from a
    template: it holds a phrase the template has outside any {% translate %}, or it is a
    string the templates translate (then its catalog lacks it)."""
    phrases = set().union(*(template_phrases(s) for s in template_sources))
    msgids = {m for s in template_sources for _, m in _template_msgids(s, "template")}
    theirs = set(visible_texts(other))
    return sorted({t for t in visible_texts(english)
                   if t in theirs and t not in SAME_EVERYWHERE and re.search(r"[A-Za-z]{2}", t)
                   and (t in msgids or any(p in t for p in phrases))})


@pytest.fixture
def portal(db):
    """The admin with two cameras, a recording, an event rule and two tokens."""
    Camera.objects.filter(slug="default").update(name="Kitchen")
    Camera.objects.create(slug="garden", name="Garden", stream_segment="/petcam_nowhere")
    root = make_user("root", superuser=True)
    make_token(root, "phone")
    make_token(root, "laptop")
    rec = Recording.objects.create(camera="default", file="x.h264", format="h264",
                                   status="complete", started_at=timezone.now())
    rule = EventRule.objects.create(camera="default", classes=["cat"])
    return {"root": root, "recording": rec.pk, "rule": rule.pk}


def portal_pages(portal, lang: str) -> dict[str, str]:
    """Every portal page's HTML in `lang` (Accept-Language, as a browser asks)."""
    header = {"HTTP_ACCEPT_LANGUAGE": lang}
    admin = Client(**header)
    admin.force_login(portal["root"])
    pages = {}
    for path in ("/", "/?camera=default", "/recordings/", f"/recordings/{portal['recording']}/",
                 "/events/", "/events/rules/", "/events/rules/new/",
                 f"/events/rules/{portal['rule']}/", "/account/", "/account/password/",
                 "/no-such-page/"):
        reply = admin.get(path)
        assert reply.status_code in (200, 404), (path, reply.status_code)
        pages[path] = reply.content.decode()
    reply = admin.post("/account/", {"action": "confirm_revoke_all"})
    pages["revoke all"] = reply.content.decode()
    token = portal["root"].auth_token_set.first()
    if token is not None:
        pages["revoke one"] = admin.post("/account/", {"action": "confirm_revoke",
                                                       "token": token.pk}).content.decode()
    anonymous = Client(**header)
    pages["login"] = anonymous.get("/accounts/login/").content.decode()
    pages["wrong password"] = anonymous.post("/accounts/login/", {
        "username": "root", "password": "wrong"}).content.decode()
    nobody = Client(**header)
    nobody.force_login(make_user(f"nobody-{lang}"))
    reply = nobody.get("/recordings/")
    assert reply.status_code == 403
    pages["403"] = reply.content.decode()
    request = RequestFactory().get("/")
    request.user = portal["root"]
    with translation.override(lang):
        for name in ("500.html", "403_csrf.html"):
            pages[name] = render_to_string(name, {}, request)
        pages["no cameras"] = render_to_string("live_grid.html", {"tiles": []}, request)
    return pages


def test_every_page_is_in_each_language(portal):
    sources = [p.read_text() for p in PORTAL_TEMPLATES]
    english = portal_pages(portal, "en")
    assert "Revoke all" in english["/account/"] and "Log in" in english["login"]
    problems = []
    for lang in LANGS:
        pages = portal_pages(portal, lang)
        assert pages.keys() == english.keys()
        for name, html in pages.items():
            assert f'<html lang="{lang}">' in html or name == "no cameras", (lang, name)
            problems += [f"{lang} {name}: {t!r}" for t in
                         english_leftovers(english[name], html, sources)]
    assert not problems, "English left in translated pages:\n" + "\n".join(problems)


def test_the_page_check_catches_an_unwrapped_string():
    src = ('{% load i18n %}<h2>{% translate "Recordings" %}</h2><p>Forgotten words</p>'
           '<button title="An unwrapped title">{% translate "Save" %}</button>'
           '<p>{{ name }}</p>')
    pages = {}
    for lang in ("en", "ja"):
        with translation.override(lang):
            pages[lang] = Template(src).render(Context({"name": "Tom the cat"}))
    assert "録画" in pages["ja"]
    assert english_leftovers(pages["en"], pages["ja"], [src]) == ["An unwrapped title",
                                                                  "Forgotten words"]


# --- choosing language and time zone ---------------------------------------------------


def test_language_follows_the_browser_then_the_account_page(portal):
    client = Client(HTTP_ACCEPT_LANGUAGE="ja,en;q=0.5")
    client.force_login(portal["root"])
    assert "ログアウト" in client.get("/").content.decode()
    assert client.get("/").headers["Content-Language"] == "ja"
    reply = client.post("/account/", {"action": "preferences", "language": "ru",
                                      "time_zone": ""})
    assert reply.status_code == 302
    html = client.get("/").content.decode()
    assert "Выйти" in html and '<html lang="ru">' in html
    # another device of the same user, whose browser asks for English: still Russian
    other = Client(HTTP_ACCEPT_LANGUAGE="en")
    other.force_login(portal["root"])
    assert "Выйти" in other.get("/recordings/").content.decode()
    # back to "as the browser says"
    client.post("/account/", {"action": "preferences", "language": "", "time_zone": ""})
    assert "Log out" in other.get("/").content.decode()
    # the JS strings follow too
    catalog_js = client.get("/jsi18n/").content.decode()
    assert r"\u63a5\u7d9a\u4e2d" in catalog_js  # 接続中, "connecting"


def test_bad_preferences_are_refused(portal):
    client = Client()
    client.force_login(portal["root"])
    for data, message in (({"language": "xx"}, b"Unknown language."),
                          ({"time_zone": "Mars/Olympus"}, b"Unknown time zone.")):
        reply = client.post("/account/", {"action": "preferences", **data})
        assert (reply.status_code, reply.content) == (400, message)


def test_times_are_shown_in_the_users_time_zone(portal):
    client = Client()
    client.force_login(portal["root"])
    token = re.compile(r"<time datetime=\"[^\"]+\">(\d{4}-\d\d-\d\d \d\d:\d\d) ([^<]+)</time>")
    utc = token.search(client.get("/account/").content.decode())
    assert utc and utc.group(2) == "UTC", utc
    # the browser's zone (app_shell.js sets the cookie) ...
    client.cookies["petcam_tz"] = "Asia/Tokyo"
    tokyo = token.search(client.get("/account/").content.decode())
    assert tokyo.group(2) == "Asia/Tokyo"
    hours = (int(tokyo.group(1)[11:13]) - int(utc.group(1)[11:13])) % 24
    assert hours == 9, (utc.group(1), tokyo.group(1))
    # ... unless the account page says otherwise; a bogus cookie is ignored
    client.post("/account/", {"action": "preferences", "language": "",
                              "time_zone": "Europe/Moscow"})
    client.cookies["petcam_tz"] = "Nowhere/Atlantis"
    assert token.search(client.get("/account/").content.decode()).group(2) == "Europe/Moscow"
    client.post("/account/", {"action": "preferences", "language": "", "time_zone": ""})
    assert token.search(client.get("/account/").content.decode()).group(2) == "UTC"
