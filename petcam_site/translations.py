"""The portal's translation catalogs (locale/<lang>/LC_MESSAGES/*.po), read and compiled
in pure Python, so neither the tests nor a fresh machine need GNU gettext's msgfmt.

The compiled .mo files are committed next to their .po; tests/unit/test_i18n.py fails
when one is stale or a message lacks its translation. After editing a .po:

    python -m petcam_site.translations          # rewrites every .mo from its .po

(`manage.py makemessages -l ja -l ru` and `-d djangojs` collect new strings; they need
xgettext, only when strings change.) See docs/translations.md.
"""

from __future__ import annotations

import ast
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAINS = ("django", "djangojs")


class PoError(ValueError):
    """A .po file this reader cannot make sense of (line number in the message)."""


@dataclass
class Entry:
    msgid: str
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)  # plural index -> text (0 if singular)
    fuzzy: bool = False

    @property
    def translated(self) -> bool:
        return not self.fuzzy and bool(self.msgstr) and all(self.msgstr.values())

    @property
    def key(self) -> str:
        """The .mo key: context EOT msgid."""
        return f"{self.msgctxt}\x04{self.msgid}" if self.msgctxt is not None else self.msgid


def parse_po(path: Path) -> list[Entry]:
    """Every entry of a .po, the header (msgid "") first; obsolete (#~) entries skipped."""
    entries: list[Entry] = []
    current: Entry | None = None
    target: tuple[str, int] | None = None  # which field the continuation lines extend
    flags: set[str] = set()

    def finish() -> None:
        nonlocal current
        if current is not None:
            entries.append(current)
        current = None

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#~"):
            continue
        if line.startswith("#"):
            if line.startswith("#,"):
                if current is not None and target and target[0].startswith("msgstr"):
                    finish()
                flags |= {f.strip() for f in line[2:].split(",")}
            continue
        try:
            if line.startswith('"'):
                if current is None or target is None:
                    raise PoError(f"{path}:{number}: a string outside an entry")
                text = _unquote(line)
                name, index = target
                if name == "msgstr":
                    current.msgstr[index] += text
                else:
                    setattr(current, name, getattr(current, name) + text)
                continue
            keyword, _, rest = line.partition(" ")
            text = _unquote(rest.strip())
        except (SyntaxError, ValueError) as exc:
            raise PoError(f"{path}:{number}: bad string: {raw!r}") from exc
        if keyword in ("msgctxt", "msgid") and (
                current is None or (target is not None and target[0] == "msgstr")):
            finish()
            current = Entry(msgid="", fuzzy="fuzzy" in flags)
            flags = set()
        if current is None:
            raise PoError(f"{path}:{number}: {keyword} before msgid")
        if keyword in ("msgctxt", "msgid", "msgid_plural"):
            setattr(current, keyword, text)
            target = (keyword, 0)
        elif keyword == "msgstr":
            current.msgstr[0] = text
            target = ("msgstr", 0)
        elif keyword.startswith("msgstr[") and keyword.endswith("]"):
            index = int(keyword[7:-1])
            current.msgstr[index] = text
            target = ("msgstr", index)
        else:
            raise PoError(f"{path}:{number}: unknown keyword {keyword!r}")
    finish()
    return entries


def _unquote(text: str) -> str:
    if not (text.startswith('"') and text.endswith('"')):
        raise ValueError(text)
    return ast.literal_eval(text)  # C-style escapes: \n \t \" \\ are Python's too


def catalog(entries: list[Entry]) -> dict[str, str]:
    """What gettext serves: key -> text (plural forms joined by NUL); untranslated and
    fuzzy entries are left out, as msgfmt does (the header is always kept)."""
    out: dict[str, str] = {}
    for e in entries:
        if e.msgid == "" and e.msgctxt is None:
            out[""] = e.msgstr.get(0, "")
        elif e.translated:
            key = e.key + ("\x00" + e.msgid_plural if e.msgid_plural is not None else "")
            out[key] = "\x00".join(e.msgstr[i] for i in sorted(e.msgstr))
    return out


def mo_bytes(messages: dict[str, str]) -> bytes:
    """A GNU .mo file (little endian, no hash table) holding `messages`."""
    keys = sorted(messages)
    ids = [k.encode() for k in keys]
    strs = [messages[k].encode() for k in keys]
    header_size = 7 * 4
    table_size = len(keys) * 8
    ids_start = header_size + 2 * table_size
    id_table, str_table = [], []
    blob = b""
    for data in ids:
        id_table.append((len(data), ids_start + len(blob)))
        blob += data + b"\x00"
    strs_start = ids_start + len(blob)
    sblob = b""
    for data in strs:
        str_table.append((len(data), strs_start + len(sblob)))
        sblob += data + b"\x00"
    out = struct.pack("<7I", 0x950412DE, 0, len(keys), header_size,
                      header_size + table_size, 0, 0)
    out += b"".join(struct.pack("<2I", *pair) for pair in id_table)
    out += b"".join(struct.pack("<2I", *pair) for pair in str_table)
    return out + blob + sblob


def po_files(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    return sorted(p for domain in DOMAINS for p in locale_dir.glob(f"*/LC_MESSAGES/{domain}.po"))


def compile_all(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    written = []
    for po in po_files(locale_dir):
        mo = po.with_suffix(".mo")
        data = mo_bytes(catalog(parse_po(po)))
        if not mo.exists() or mo.read_bytes() != data:
            mo.write_bytes(data)
            written.append(mo)
    return written


if __name__ == "__main__":
    for path in compile_all():
        print(f"wrote {path.relative_to(LOCALE_DIR.parent)}")
    sys.exit(0)
