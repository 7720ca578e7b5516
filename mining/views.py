"""The web UI: the live page and the classic /json."""

from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from mining import fastpath, selectors, store
from mining.api.views import StatsApi

CHART_JS = "mining/vendor/chart.umd.min.js"


@require_safe
def classic_json(request: HttpRequest) -> HttpResponse:
    """The classic webui's contract: {"coins", "hashes", "now"}.

    In the webui role gunicorn's requests for /json never get here: the WSGI
    fast path (mining.fastpath) gives the same answer without Django.
    """
    status, body = fastpath.classic_answer()
    return HttpResponse(body, status=status, content_type="application/json")


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    # The first figures and the chart's five minutes are in the page itself,
    # so the chart is drawn at once instead of filling up while it is open.
    try:
        initial = StatsApi.OutputSerializer(selectors.dashboard()).data
        unavailable = ""
    except store.StoreUnavailable as exc:
        initial, unavailable = None, str(exc)
    context = {
        "initial": initial,
        "unavailable": unavailable,
        "chart_js": CHART_JS if chart_js_installed() else "",
    }
    return render(request, "mining/index.html", context)


def chart_js_installed() -> bool:
    """deploy/vendor-static.sh installs Chart.js with npm; git never has it."""
    return staticfiles_storage.exists(CHART_JS) or bool(finders.find(CHART_JS))
