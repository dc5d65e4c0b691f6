"""Configuration: a TOML file, overlaid with ``BLOBSTORE_*`` environment
variables, validated key by key, and turned into a :class:`~blobstore.Store`.

The package: :mod:`.settings` (what a valid configuration holds),
:mod:`.schema` (what each key accepts), :mod:`.loading` (file, environment,
overrides → Settings), :mod:`.binds` (listen addresses), :mod:`.build` (the
composition root: Settings → Store).

::

    from blobstore.config import build_store, load_settings

    settings = load_settings("config/production.toml")
    store = build_store(settings)

Precedence, lowest first: built-in defaults, the file, the environment, then
the *overrides* a caller passes (the command line's ``--bind`` and friends).

**Environment variables.** ``BLOBSTORE_<SECTION>_<KEY>`` sets ``key`` in
``[section]``: ``BLOBSTORE_SERVER_BIND=0.0.0.0:8080``,
``BLOBSTORE_LIMITS_MIN_PART_SIZE=8MiB``. Section names have no underscores,
so the first underscore after the prefix splits section from key. A value
for a key of known type is read as that type (``"8MiB"`` is a size,
``"30m"`` a duration, ``"4"`` an integer); a list of tables is written in
TOML (``BLOBSTORE_AUTH_TOKENS='[{token="...", access="read"}]'``); in the
pass-through tables (``[backend]``, ``[s3]``, ``[cache]``) a value is read as
TOML when it is valid TOML (``4``, ``true``, ``["/d1", "/d2"]``) and as a
plain string otherwise. ``BLOBSTORE_CONFIG`` names the file and
``BLOBSTORE_DATA_DIR`` the data directory. Variables whose first word is not
a section (``BLOBSTORE_TEST_...``) are ignored.

Every error is a :class:`~blobstore.errors.ConfigError` whose message names
the key (and the variable, when it came from one), e.g.
``config error: [limits] min_part_size must be an integer``.
"""

from __future__ import annotations

from blobstore.config.binds import is_loopback
from blobstore.config.binds import require_safe_bind
from blobstore.config.build import build_store
from blobstore.config.loading import load_settings
from blobstore.config.settings import ACCESS_LEVELS
from blobstore.config.settings import AuthSettings
from blobstore.config.settings import GCSettings
from blobstore.config.settings import LimitSettings
from blobstore.config.settings import ServerSettings
from blobstore.config.settings import Settings
from blobstore.config.settings import Token

__all__ = [
    "ACCESS_LEVELS",
    "AuthSettings",
    "GCSettings",
    "LimitSettings",
    "ServerSettings",
    "Settings",
    "Token",
    "build_store",
    "is_loopback",
    "load_settings",
    "require_safe_bind",
]
