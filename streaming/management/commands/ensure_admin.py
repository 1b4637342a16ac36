"""`manage.py ensure_admin`: create the first admin with a random password, printed once."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand
from django.utils.crypto import get_random_string


def new_password(user) -> str:
    """16 letters and digits (~95 bits, from `secrets`): no leading '-' that a command
    line would take for an option, nothing to quote in a shell or URL. Drawn again in
    the (astronomically rare) case the password rules refuse it, e.g. all digits."""
    while True:
        password = get_random_string(16)
        try:
            validate_password(password, user)
        except ValidationError:
            continue
        return password


class Command(BaseCommand):
    help = "Create an 'admin' superuser with a random password if no superuser exists yet."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options):
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            self.stdout.write("Admin account exists (password was printed on first run; "
                              "reset it with `.venv/bin/python manage.py changepassword admin`).")
            return
        password = new_password(users(username=username))
        users.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(self.style.SUCCESS(
            f"Created admin account.  username: {username}  password: {password}\n"
            "This password is shown only once: note it now."))
