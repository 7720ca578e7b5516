import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dockercoins.settings")

django_application = get_wsgi_application()

# GET /json straight from WSGI in the webui role (half the CPU per request),
# and GET /metrics plus the request metrics of every HTTP role in front of
# both; after Django's set-up, which the imports below need.
from dockercoins.metrics import with_metrics  # noqa: E402
from mining.fastpath import with_fast_json  # noqa: E402

application = with_metrics(with_fast_json(django_application))
