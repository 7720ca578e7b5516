"""What each analysis template measures, per version, and how it is judged.

Every series is labelled with the image version of the task that made it
(mining.metrics, dockercoins.metrics), so one query gives the new and the old
version side by side over the same window. rng and hasher are judged by their
own request metrics (the serving task's version), which is what the workers
see from them less the network; the worker's round-trip metrics carry the
worker's version, not the upstream's, so they cannot tell two rng versions apart.
"""

from dataclasses import dataclass

from rollouts.spec.choices import AnalysisTemplate

HIGHER, LOWER, SHARE = "higher", "lower", "share"
# An error share is judged in points, not as a ratio of the old share (which is
# often 0): the limit is old share + threshold × SHARE_POINTS.
SHARE_POINTS = 0.1


@dataclass(frozen=True)
class Template:
    """One metric, per task and per version.

    `per_task` is PromQL giving one value per task (series by `instance`) over
    the window `{w}`; the analysis averages it by version and counts the tasks.
    `samples` counts the scrapes of each task in the window (what "too few
    samples" is measured against). `better` is HIGHER (hash rate), LOWER
    (latency) or SHARE (error share, judged in points).
    """

    name: str
    role: str
    per_task: str
    samples: str
    unit: str
    better: str
    # How the measurement reads: "new tasks mine 0.33 hashes/s each".
    wording: str


def _http(job: str) -> tuple[str, str]:
    count = f'dockercoins_http_request_duration_seconds_count{{job="{job}"}}'
    total = f'dockercoins_http_request_duration_seconds_sum{{job="{job}"}}'
    latency = (
        f"sum by (instance, version) (rate({total}[{{w}}])) / "
        f"sum by (instance, version) (rate({count}[{{w}}]))"
    )
    return latency, f"max by (instance, version) (count_over_time({count}[{{w}}]))"


_RNG_LATENCY, _RNG_SAMPLES = _http("rng")
_HASHER_LATENCY, _HASHER_SAMPLES = _http("hasher")
# POSTs only: hashes served, not the health checks' GETs.
_HASHER_COUNT = (
    'dockercoins_http_request_duration_seconds_count{job="hasher",method="POST"}'
)
_HASHER_5XX = (
    "dockercoins_http_request_duration_seconds_count"
    '{job="hasher",method="POST",status=~"5.."}'
)
_HASHES = 'dockercoins_hashes_total{job="worker"}'

TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template(
            AnalysisTemplate.WORKER_HASH_RATE,
            "worker",
            f"sum by (instance, version) (rate({_HASHES}[{{w}}]))",
            f"count_over_time({_HASHES}[{{w}}])",
            "hashes/s",
            HIGHER,
            "new tasks mine {value} hashes/s each",
        ),
        Template(
            AnalysisTemplate.RNG_LATENCY,
            "rng",
            _RNG_LATENCY,
            _RNG_SAMPLES,
            "s",
            LOWER,
            "new rng tasks answer in {value} s",
        ),
        Template(
            AnalysisTemplate.HASHER_LATENCY,
            "hasher",
            _HASHER_LATENCY,
            _HASHER_SAMPLES,
            "s",
            LOWER,
            "new hasher tasks answer in {value} s",
        ),
        Template(
            AnalysisTemplate.HASHER_ERRORS,
            "hasher",
            # `or ... * 0`: a task that answered no 5xx has no 5xx series; its
            # share is 0, not missing (missing would read as no data).
            f"(sum by (instance, version) (rate({_HASHER_5XX}[{{w}}]))"
            f" or sum by (instance, version) (rate({_HASHER_COUNT}[{{w}}])) * 0)"
            f" / sum by (instance, version) (rate({_HASHER_COUNT}[{{w}}]))",
            f"max by (instance, version) (count_over_time({_HASHER_COUNT}[{{w}}]))",
            "share",
            SHARE,
            "new hasher tasks answer {value} of requests with an error",
        ),
    )
}

# What `auto` means for each role of the stack; the rest have no analysis.
BY_ROLE = {
    "worker": AnalysisTemplate.WORKER_HASH_RATE,
    "rng": AnalysisTemplate.RNG_LATENCY,
    "hasher": AnalysisTemplate.HASHER_ERRORS,
}


def template_for(setting: str, role: str) -> Template | None:
    """The template a service's `analysis_template` setting names; `auto`
    picks the role's (BY_ROLE), `off` and a role without one give None."""
    if setting == AnalysisTemplate.OFF:
        return None
    if setting == AnalysisTemplate.AUTO:
        name = BY_ROLE.get(role)
        return TEMPLATES[name] if name else None
    return TEMPLATES.get(setting)


def query(text: str, window_seconds: float) -> str:
    """`text` with its window filled in, in whole seconds ("30s")."""
    return text.replace("{w}", f"{max(1, round(window_seconds))}s")
