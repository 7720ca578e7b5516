"""Settings for every role of the DockerCoins image.

Everything comes from environment variables with defaults that run on a laptop:
SQLite next to the code, Redis on localhost. Inside the stack the compose file
sets the few that differ (REDIS_URL, the database path, the role).
"""

import os
from datetime import timedelta
from pathlib import Path

from django.core.management.utils import get_random_secret_key

from dockercoins.env import (
    env_bool,
    env_float,
    env_float_list,
    env_int,
    env_list,
    env_secret,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# Which process this is: rng and hasher get a lean URLconf and middleware,
# everything else (webui, worker, controller, manage.py on a laptop) the full one.
ROLE = env_str("DOCKERCOINS_ROLE", "webui")

DEBUG = env_bool("DEBUG", False)
# Without one, each process invents its own: fine for tests and one-off commands,
# but sessions break across gunicorn workers; `check --deploy` says so.
SECRET_KEY_FROM_ENV = bool(env_secret("SECRET_KEY"))
SECRET_KEY = env_secret("SECRET_KEY") or get_random_secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "*")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "dockercoins.apps.DockercoinsConfig",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "knox",
    "csp",
    "mining",
    "rollouts",
    "access",
    "operations",
    "webhooks",
]

_FULL_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "dockercoins.middleware.RejectNulBytesMiddleware",
    "dockercoins.middleware.UnreadableBodyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Names the view for the request metrics (dockercoins.metrics).
    "dockercoins.metrics.ViewName",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into a 429.
    "axes.middleware.AxesMiddleware",
]
# rng and hasher answer machines, not browsers: no sessions, no CSRF, and every
# microsecond saved per request is throughput for the miners.
_LEAN_MIDDLEWARE: list[str] = []

_URLCONFS = {"rng": "mining.rng.urls", "hasher": "mining.hasher.urls"}
ROOT_URLCONF = _URLCONFS.get(ROLE, "dockercoins.urls")
MIDDLEWARE = _LEAN_MIDDLEWARE if ROLE in _URLCONFS else _FULL_MIDDLEWARE

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project-wide overrides of the admin's templates (searched before the apps').
        "DIRS": [BASE_DIR / "dockercoins" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "dockercoins.wsgi.application"

# SQLite in WAL mode with immediate transactions: the webui (admin) and the
# rollout controller write to the same file on a shared volume, and IMMEDIATE
# makes a writer wait for the lock instead of failing mid-transaction. That
# holds on one node only: the stack sets POSTGRES_HOST, and then every webui
# and controller replica, on any node, shares the stack's PostgreSQL.
POSTGRES_HOST = env_str("POSTGRES_HOST", "")
if POSTGRES_HOST:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": POSTGRES_HOST,
            "PORT": env_str("POSTGRES_PORT", "5432"),
            "NAME": env_str("POSTGRES_DB", "dockercoins"),
            "USER": env_str("POSTGRES_USER", "dockercoins"),
            "PASSWORD": env_secret("POSTGRES_PASSWORD"),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {"connect_timeout": 5},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("DATABASE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out login before any password check.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles"))
# Nothing is uploaded or served from here. A real prefix keeps Django's live
# test server (the API fuzzer's) from first looking every path up as a file.
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "dockercoins.auth.LockableBasicAuthentication",
        "access.auth.BearerTokenAuthentication",
    ],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# --- Logins (django-axes) -------------------------------------------------
# LOGIN_FAILURE_LIMIT wrong passwords in a row for one username from one
# address (admin form or HTTP Basic on the API) lock that pair out for
# LOGIN_LOCKOUT_MINUTES; a right password resets the count. Per pair rather
# than per username, so a stranger cannot lock the real admin out from
# elsewhere. Unlock sooner: admin "Access attempts", or `manage.py axes_reset`.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1, maximum=1000)
AXES_COOLOFF_TIME = timedelta(
    minutes=env_float("LOGIN_LOCKOUT_MINUTES", 15, minimum=1, maximum=7 * 24 * 60)
)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "dockercoins.auth.lockout_response"
# axes logs a banner at every start: noise before a command's one-line error.
AXES_VERBOSE = False

# --- API tokens (django-rest-knox, our model access.ApiToken) ---------------
# `Authorization: Bearer dcc_...`; no lifetime unless one is given when the
# token is made (admin, `manage.py token create --expires`). The prefix lets
# secret scanners recognise a leaked token.
KNOX_TOKEN_MODEL = "access.ApiToken"
REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Bearer",
    "TOKEN_TTL": None,
    "TOKEN_PREFIX": "dcc_",
}

# --- Webhooks (webhooks/) ------------------------------------------------
# Links in webhook bodies start with this (the address people reach the
# webui at). Each attempt ends WEBHOOK_TIMEOUT seconds after it started,
# whatever the receiver does; a failed one is retried after the next step of
# WEBHOOK_BACKOFF (seconds; the last repeats) until WEBHOOK_RETRY_FOR seconds
# after the event. WEBHOOK_CONCURRENCY deliveries at most are in flight, one
# per subscription.
WEBHOOK_PUBLIC_URL = env_str("WEBHOOK_PUBLIC_URL", "http://localhost:8000")
WEBHOOK_TIMEOUT = env_float("WEBHOOK_TIMEOUT", 10, minimum=0.1, maximum=300)
WEBHOOK_BACKOFF = env_float_list(
    "WEBHOOK_BACKOFF",
    (5, 10, 30, 60, 120, 300, 600, 1800, 3600),
    minimum=0.1,
    maximum=24 * 3600,
)
WEBHOOK_RETRY_FOR = env_float(
    "WEBHOOK_RETRY_FOR", 24 * 3600, minimum=1, maximum=30 * 24 * 3600
)
WEBHOOK_CONCURRENCY = env_int("WEBHOOK_CONCURRENCY", 4, minimum=1, maximum=64)

# --- OpenAPI (drf-spectacular) ---------------------------------------------
SPECTACULAR_SETTINGS = {
    "TITLE": "DockerCoins Control API",
    "DESCRIPTION": (
        "Mining figures (/api/, public) and rollouts (/api/rollouts/, staff)."
    ),
    "VERSION": "1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files from the drf-spectacular-sidecar package, served by
    # whitenoise like every other static file: no CDN, nothing vendored.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # update_order and rollback_order share one set of choices: one name.
    "ENUM_NAME_OVERRIDES": {"OrderEnum": "rollouts.models.Order"},
}

# HTTPS_ONLY=1 when a TLS-terminating proxy sits in front (production): redirect
# to HTTPS, secure cookies, HSTS. The workshop serves plain HTTP on :8000, where
# those would lock everyone out of the admin; there we silence exactly the four
# checks that ask for them, so `check --deploy` stays meaningful for the rest.
HTTPS_ONLY = env_bool("HTTPS_ONLY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = HTTPS_ONLY
SESSION_COOKIE_SECURE = HTTPS_ONLY
CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_HSTS_SECONDS = 31536000 if HTTPS_ONLY else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS_ONLY
# Preloading is a commitment for the whole domain, not ours to make by default.
SECURE_HSTS_PRELOAD = False
SILENCED_SYSTEM_CHECKS = ["security.W021"]
if not HTTPS_ONLY:
    SILENCED_SYSTEM_CHECKS += [
        "security.W004",
        "security.W008",
        "security.W012",
        "security.W016",
    ]
SECURE_CONTENT_TYPE_NOSNIFF = True

# Content-Security-Policy (django-csp) on every page: scripts only from our own
# static files (the admin, the dashboard's chart.js, Swagger UI's bundle and
# its start-up script, served as a file by dockercoins.api.ApiDocs). Inline
# styles stay allowed: Swagger UI's page has a <style> block and the admin
# some style attributes; inline scripts, other origins, plugins, framing and
# foreign form targets are refused.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
X_FRAME_OPTIONS = "DENY"

# --- DockerCoins ---------------------------------------------------------
REDIS_URL = env_url(
    "REDIS_URL", "redis://127.0.0.1:6379/0", schemes=("redis", "rediss", "unix")
)
RNG_URL = env_str("RNG_URL", "http://rng")
HASHER_URL = env_str("HASHER_URL", "http://hasher")
# Seconds, 0 to MAX_DELAY, as `mine --delay`: a minute per hash is a typo.
MAX_DELAY = 60.0
RNG_DELAY = env_float("RNG_DELAY", 0.1, maximum=MAX_DELAY)
HASHER_DELAY = env_float("HASHER_DELAY", 0.1, maximum=MAX_DELAY)
WORKER_DELAY = env_float("WORKER_DELAY", 0.1, maximum=MAX_DELAY)
# Share of hash requests answered 500, 0 to 1: the workshop's `flaky` hasher
# (healthy, answers its probes, fails some work) for the rollout analysis.
HASHER_ERROR_SHARE = env_float("HASHER_ERROR_SHARE", 0.0, maximum=1.0)

# --- Metrics -------------------------------------------------------------
# The image's own version (deploy/Dockerfile sets it per target: 1.0, 1.1,
# bugged), a label on the app's metrics so that two versions running at the
# same moment can be compared. "dev" outside the image.
VERSION = env_str("DOCKERCOINS_VERSION", "dev") or "dev"
# Where the worker and the controller serve /metrics (the HTTP roles serve it
# on their own port 80); 0 turns it off.
METRICS_PORT = env_int("METRICS_PORT", 9100, minimum=0)
# Where the rollout analysis reads its measurements (rollouts.analysis): the
# stack's Prometheus, by its service name inside the stack; on a manager node
# outside it (`rollout apply --wait`), its published port.
PROMETHEUS_URL = env_str("PROMETHEUS_URL", "http://prometheus:9090")
# Seconds one query may take before the measurement is an Error.
PROMETHEUS_TIMEOUT = env_float("PROMETHEUS_TIMEOUT", 5.0, minimum=0.1)

# --- Rollouts ------------------------------------------------------------
# The stack whose services the admin manages (`docker stack deploy ... NAME`).
STACK_NAME = env_str("STACK_NAME", "dockercoins")
DOCKER_TIMEOUT = env_float("DOCKER_TIMEOUT", 30, minimum=1, maximum=3600)
# Only the controller has the Docker socket. The entrypoint sets the role of
# every process of the stack; unset (`manage.py rollout` in the controller's
# container, tests, a laptop) means a command line that may talk to the engine.
DOCKER_ENABLED = env_bool(
    "DOCKER_ENABLED", os.environ.get("DOCKERCOINS_ROLE") in (None, "controller")
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "filters": {"one_line": {"()": "dockercoins.logs.WithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.server": {"level": "WARNING"},
        # A Host outside ALLOWED_HOSTS is the client's mistake (or a probe):
        # one WARNING line, not an ERROR with a 15-line traceback.
        "django.security.DisallowedHost": {"level": "WARNING", "filters": ["one_line"]},
        "docker": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
