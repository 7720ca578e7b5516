import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dockercoins.settings")

django_application = get_wsgi_application()

# GET /json straight from WSGI in the webui role (half the CPU per request);
# after Django's set-up, which the import below needs.
from mining.fastpath import with_fast_json  # noqa: E402

application = with_fast_json(django_application)
