"""The web UI: the live page and the classic /json."""

import time

from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from mining import selectors, store
from mining.api.views import StatsApi

CHART_JS = "mining/vendor/chart.umd.min.js"


@require_safe
def classic_json(request: HttpRequest) -> JsonResponse:
    """The classic webui's contract: {"coins", "hashes", "now"}, one round trip."""
    try:
        totals = selectors.totals()
    except store.StoreUnavailable as exc:
        return JsonResponse({"detail": str(exc)}, status=503)
    return JsonResponse(
        {"coins": totals.coins, "hashes": totals.hashes, "now": time.time()}
    )


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
