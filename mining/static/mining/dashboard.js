// DockerCoins dashboard: draws the stats embedded in the page at once, then
// polls /api/stats/ every second. Chart.js (installed by npm, see
// deploy/vendor-static.sh) draws the chart; without it the figures still work.
// Every 5 s it also reads the rollouts of worker, rng and hasher in the
// window (/api/marks/) and marks their start, promotion and end on the chart;
// while a worker rollout is in the window, the rate by worker version
// (/api/versions/, from Prometheus) is drawn beside the total.
"use strict";

(function () {
  const script = document.currentScript;
  const statsUrl = script.dataset.statsUrl;
  const marksUrl = script.dataset.marksUrl;
  const versionsUrl = script.dataset.versionsUrl;
  const POLL_MS = 1000;
  const MARKS_POLL_MS = 5000;
  const TIMEOUT_MS = 5000;
  const VERSION_COLOURS = ["#2f9e44", "#ae3ec9", "#1098ad", "#f08c00", "#495057"];
  // How each outcome reads and looks on the chart.
  const OUTCOMES = {
    completed: ["completed", "#2b8a3e"],
    rolled_back: ["rolled back", "#c92a2a"],
    failed: ["failed", "#c92a2a"],
    paused: ["paused", "#e8590c"],
    aborted: ["aborted", "#e8590c"],
    superseded: ["superseded", "#e8590c"],
    cancelled: ["cancelled", "#868e96"],
  };
  const RUNNING_COLOUR = "#1971c2";
  let chart = null;
  let seriesStart = null;  // unix second of the chart's first point
  let seriesLength = 0;
  let rollouts = [];       // /api/marks/'s rollouts
  let versions = null;     // /api/versions/'s answer, or null

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
      plugins: [rolloutMarksPlugin],
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

  function outcome(rollout) {
    if (rollout.finished === null) return ["running", RUNNING_COLOUR];
    return OUTCOMES[rollout.state] || [rollout.state, "#868e96"];
  }

  function rolloutTitle(rollout) {
    if (rollout.kind === "rollback") return rollout.service + " rollback";
    const from = rollout.baseline_version ? rollout.baseline_version + " \u2192 " : "\u2192 ";
    return rollout.service + " " + from + (rollout.version || "?");
  }

  // The marks of one rollout: [unix time, kind, text], in time order.
  function marksOf(rollout) {
    const marks = [[rollout.started, "start", rolloutTitle(rollout)]];
    if (rollout.promoted !== null) marks.push([rollout.promoted, "promoted", "promoted"]);
    if (rollout.finished !== null) marks.push([rollout.finished, "end", outcome(rollout)[0]]);
    return marks;
  }

  // Chart.js plugin: a tinted band over each rollout's span, a line at its
  // start, promotion and end, each labelled. What it drew is kept on the
  // chart ($rolloutMarks) for tests and for the list under the chart.
  const rolloutMarksPlugin = {
    id: "rolloutMarks",
    afterDatasetsDraw(c) {
      const drawn = [];
      c.$rolloutMarks = drawn;
      if (seriesStart === null || !seriesLength) return;
      const x = c.scales.x;
      const area = c.chartArea;
      const last = seriesStart + seriesLength - 1;
      const px = (t) => x.getPixelForValue(Math.min(Math.max(t, seriesStart), last) - seriesStart);
      const ctx = c.ctx;
      ctx.save();
      ctx.font = "12px system-ui, sans-serif";
      rollouts.forEach((rollout, n) => {
        const colour = outcome(rollout)[1];
        const end = rollout.finished === null ? last : rollout.finished;
        if (end < seriesStart || rollout.started > last) return;
        ctx.globalAlpha = 0.08;
        ctx.fillStyle = colour;
        ctx.fillRect(px(rollout.started), area.top, px(end) - px(rollout.started), area.bottom - area.top);
        ctx.globalAlpha = 1;
        marksOf(rollout).forEach(([at, kind, text], i) => {
          if (at < seriesStart || at > last) return;
          const left = px(at);
          ctx.strokeStyle = kind === "start" ? RUNNING_COLOUR : colour;
          ctx.lineWidth = 2;
          ctx.setLineDash(kind === "promoted" ? [4, 3] : []);
          ctx.beginPath();
          ctx.moveTo(left, area.top);
          ctx.lineTo(left, area.bottom);
          ctx.stroke();
          ctx.fillStyle = ctx.strokeStyle;
          // Staggered rows so marks close together stay readable.
          const row = (n + i) % 3;
          const width = ctx.measureText(text).width;
          const textLeft = left + 4 + width > area.right ? left - 4 - width : left + 4;
          ctx.fillText(text, textLeft, area.top + 14 + row * 14);
          drawn.push({ rollout: rollout.id, kind: kind, text: text, x: left });
        });
      });
      ctx.restore();
    },
  };

  function clock(unix) {
    return unix === null ? "\u2013" : timeLabel(unix);
  }

  function renderMarksList() {
    const list = $("rollout-marks");
    if (!list) return;
    list.replaceChildren(...rollouts.map((rollout) => {
      const item = document.createElement("li");
      const [word, colour] = outcome(rollout);
      item.dataset.rollout = rollout.id;
      item.dataset.state = rollout.finished === null ? "running" : rollout.state;
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colour;
      const parts = ["#" + rollout.id + " " + rolloutTitle(rollout) + ":",
        "started " + clock(rollout.started)];
      if (rollout.promoted !== null) parts.push("promoted " + clock(rollout.promoted));
      parts.push(rollout.finished === null ? "running" : word + " " + clock(rollout.finished));
      item.append(swatch, parts.join(", ").replace(":,", ":"));
      return item;
    }));
    $("rollout-marks-none").hidden = rollouts.length > 0;
  }

  function wantVersions() {
    const box = $("by-version");
    return Boolean(box && box.checked && rollouts.some((r) => r.service === "worker"));
  }

  // One dataset per worker version, on the chart's seconds (gaps spanned).
  function versionDatasets() {
    if (!versions || !wantVersions() || seriesStart === null) return [];
    return versions.versions.map((v, n) => {
      const data = new Array(seriesLength).fill(null);
      v.rates.forEach((rate, j) => {
        const index = versions.start + j * versions.step - seriesStart;
        if (index >= 0 && index < seriesLength) data[index] = rate;
      });
      return {
        label: "version " + v.version + " (" + v.tasks + " task" + (v.tasks === 1 ? "" : "s") + ")",
        data: data, borderColor: VERSION_COLOURS[n % VERSION_COLOURS.length],
        borderWidth: 2, borderDash: [6, 3], pointRadius: 0, spanGaps: true,
        tension: 0.2, fill: false, dockercoinsVersion: v.version,
      };
    });
  }

  function redraw() {
    if (!chart) return;
    chart.data.datasets.length = 2;
    chart.data.datasets.push(...versionDatasets());
    chart.update("none");
  }

  async function getJson(url) {
    const response = await fetch(url, {
      cache: "no-store",
      headers: { Accept: "application/json" },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    return [response, await response.json()];
  }

  async function pollMarks() {
    try {
      const [response, body] = await getJson(marksUrl);
      if (response.ok) {
        rollouts = body.rollouts;
        renderMarksList();
      }
      versions = null;
      const note = $("versions-note");
      if (wantVersions()) {
        const [answer, rates] = await getJson(versionsUrl);
        if (answer.ok) {
          versions = rates;
          note.hidden = true;
        } else {
          note.textContent = "Rate by version unavailable: " + (rates.detail || answer.status);
          note.hidden = false;
        }
      } else if (note) {
        note.hidden = true;
      }
    } catch (error) {
      // The stats poll says when the web UI does not answer.
    } finally {
      redraw();
      window.setTimeout(pollMarks, MARKS_POLL_MS);
    }
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
      const moved = series.start !== seriesStart;
      seriesStart = series.start;
      seriesLength = series.hashes.length;
      chart.data.labels = series.hashes.map((_, i) =>
        timeLabel(series.start + i * series.step));
      chart.data.datasets[0].data = series.hashes;
      chart.data.datasets[1].data = series.average;
      // The version lines are on the same seconds: shift them with the window.
      if (moved && chart.data.datasets.length > 2) {
        chart.data.datasets.length = 2;
        chart.data.datasets.push(...versionDatasets());
      }
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
  const byVersion = $("by-version");
  if (byVersion) byVersion.addEventListener("change", () => {
    if (!byVersion.checked) $("versions-note").hidden = true;
    redraw();
  });
  pollMarks();
})();
