"""What a browser would submit from a Django admin object form (tests and the hostile probe)."""

from __future__ import annotations

from html.parser import HTMLParser


class FormFields(HTMLParser):
    """The values of the admin's object form (`<model>_form`; the header's logout form
    comes first and is skipped)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self.depth = 0  # inside the form
        self.done = False
        self.select: str | None = None
        self.textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("id") or "").endswith("_form") and not self.done:
            self.depth = 1
            return
        if not self.depth:
            return
        name = a.get("name")
        if tag == "input" and name and "disabled" not in a:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.append((name, a.get("value", "on")))
            elif kind not in ("submit", "button", "file"):
                self.fields.append((name, a.get("value", "")))
        elif tag == "select" and name:
            self.select = name
        elif tag == "option" and self.select and "selected" in a:
            self.fields.append((self.select, a.get("value", "")))
        elif tag == "textarea" and name:
            self.textarea = name
            self.fields.append((name, ""))

    def handle_endtag(self, tag):
        if tag == "form" and self.depth:
            self.depth, self.done = 0, True
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None


def form_fields(html: str) -> dict[str, list[str]]:
    """The admin object form's fields as name -> values (several for multi-selects)."""
    parser = FormFields()
    parser.feed(html)
    data: dict[str, list[str]] = {}
    for name, value in parser.fields:
        data.setdefault(name, []).append(value)
    return data


def with_changes(fields: dict[str, list[str]], **changes) -> dict[str, list[str]]:
    """The form's fields as a browser's Save would post them after `changes` (a list
    replaces a field's values, None removes the field)."""
    data = dict(fields)
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    data.setdefault("_save", ["Save"])
    return data
