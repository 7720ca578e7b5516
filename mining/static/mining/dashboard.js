// DockerCoins dashboard: draws the stats embedded in the page at once, then
// polls /api/stats/ every second. Chart.js (installed by npm, see
// deploy/vendor-static.sh) draws the chart; without it the figures still work.
"use strict";

(function () {
  const script = document.currentScript;
  const statsUrl = script.dataset.statsUrl;
  const POLL_MS = 1000;
  const TIMEOUT_MS = 5000;
  let chart = null;

  const $ = (id) => document.getElementById(id);
  const number = (value, digits) =>
    value === null || value === undefined
      ? "\u2013"
      : Number(value).toLocaleString(undefined, {
          minimumFractionDigits: digits,
          maximumFractionDigits: digits,
        });

  function timeLabel(unixSecond) {
    return new Date(unixSecond * 1000).toLocaleTimeString([], { hour12: false });
  }

  function makeChart() {
    const canvas = $("chart");
    if (!canvas) return null;
    if (typeof window.Chart === "undefined") {
      $("chart-missing").hidden = false;
      return null;
    }
    return new window.Chart(canvas, {
      type: "line",
      data: {
        labels: [],
        datasets: [
          { label: "hashes/s", data: [], borderColor: "#0b6bcb",
            backgroundColor: "rgba(11,107,203,.12)", fill: true,
            borderWidth: 1, pointRadius: 0, tension: 0 },
          { label: "10 s average", data: [], borderColor: "#e8590c",
            borderWidth: 2, pointRadius: 0, tension: 0.2 },
        ],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { ticks: { maxTicksLimit: 10, maxRotation: 0 } },
          y: { beginAtZero: true, title: { display: true, text: "hashes/s" } },
        },
      },
    });
  }

  function showLatency(name, probe) {
    const value = $("latency-" + name);
    const note = $("latency-" + name + "-note");
    const result = probe ? probe[name] : null;
    if (!result) {
      value.textContent = "\u2013";
      note.textContent = "probing\u2026";
      return;
    }
    value.textContent = result.ms === null ? "\u2013" : number(result.ms, 1);
    note.textContent = result.error ? result.error : "ms";
  }

  function render(stats) {
    $("rate-10s").textContent = number(stats.rate.last_10s, 1);
    $("rate-60s").textContent = number(stats.rate.last_60s, 1);
    $("coins").textContent = number(stats.totals.coins, 0);
    $("hashes").textContent = number(stats.totals.hashes, 0) + " hashes in all";
    $("workers").textContent = number(stats.workers.active, 0);
    showLatency("rng", stats.latency);
    showLatency("hasher", stats.latency);
    $("probed-at").textContent = stats.latency
      ? "Latency: GET / on rng and hasher from inside the stack, probed " +
        Math.max(0, Math.round(stats.now - stats.latency.probed_at)) + " s ago."
      : "Latency: first probe running\u2026";
    if (chart) {
      const series = stats.series;
      chart.data.labels = series.hashes.map((_, i) =>
        timeLabel(series.start + i * series.step));
      chart.data.datasets[0].data = series.hashes;
      chart.data.datasets[1].data = series.average;
      chart.update("none");
    }
  }

  function setNotices(redisDetail, webuiDown) {
    $("redis-notice").hidden = redisDetail === null;
    if (redisDetail !== null) $("redis-detail").textContent = redisDetail;
    $("webui-notice").hidden = !webuiDown;
  }

  async function poll() {
    try {
      const response = await fetch(statsUrl, {
        cache: "no-store",
        headers: { Accept: "application/json" },
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      const body = await response.json();
      if (response.ok) {
        setNotices(null, false);
        render(body);
      } else if (response.status === 503) {
        setNotices(body.detail || "", false);
      } else {
        setNotices(null, true);
      }
    } catch (error) {
      setNotices(null, true);
    } finally {
      window.setTimeout(poll, POLL_MS);
    }
  }

  chart = makeChart();
  const initial = JSON.parse($("initial-stats").textContent);
  if (initial) render(initial);
  window.setTimeout(poll, POLL_MS);
})();
