"""Move DRF's clear-text tokens into knox's hashed table, then delete them.

knox keeps sha512(key) and the key's first 15 characters; a DRF key (40 hex
characters) fits that scheme as it is, so every app keeps working with the key it
holds: the digest of the old key is stored and the clear text is dropped. The moved
tokens get the usual expiry counted from now (PETCAM_TOKEN_TTL_DAYS) and the name
"from before hashing". Not reversible: the clear keys are gone.
"""

from django.db import migrations
from django.utils import timezone
from knox.crypto import hash_token
from knox.settings import CONSTANTS, knox_settings

MOVED_NAME = "from before hashing"


def hash_old_tokens(apps, schema_editor):
    Token = apps.get_model("authtoken", "Token")  # noqa: N806 - model class
    ApiToken = apps.get_model("accounts", "ApiToken")  # noqa: N806
    ttl = knox_settings.TOKEN_TTL
    expiry = timezone.now() + ttl if ttl is not None else None
    for old in Token.objects.all().iterator():
        ApiToken.objects.update_or_create(
            digest=hash_token(old.key),
            defaults={"token_key": old.key[:CONSTANTS.TOKEN_KEY_LENGTH], "user_id": old.user_id,
                      "expiry": expiry, "name": MOVED_NAME})
        # auto_now_add set `created` to now: keep when the key was really made
        ApiToken.objects.filter(digest=hash_token(old.key)).update(created=old.created)
    Token.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_api_token"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]
    operations = [migrations.RunPython(hash_old_tokens, migrations.RunPython.noop)]
