// Keeps the live panels of a Service change page current without reloading the
// page (a reload would throw away what the operator is typing in the form).
// Every 2 s while a rollout runs, every 15 s otherwise: a rollout can also be
// started by `manage.py rollout` or another operator.
"use strict";
(function () {
  const FAST_MS = 2000;
  const SLOW_MS = 15000;

  function start() {
    const live = document.getElementById("rollouts-live");
    const history = document.getElementById("rollouts-history");
    if (!live || !live.dataset.url) {
      return;
    }
    const delay = () => (live.dataset.active === "1" ? FAST_MS : SLOW_MS);

    async function refresh() {
      if (!document.hidden) {
        try {
          const response = await fetch(live.dataset.url, {
            credentials: "same-origin",
            headers: { Accept: "application/json" },
          });
          if (response.ok) {
            const data = await response.json();
            live.innerHTML = data.live;
            if (history) {
              history.innerHTML = data.history;
            }
            live.dataset.active = data.active ? "1" : "0";
          } else {
            live.dataset.active = "0"; // logged out or gone: back off
          }
        } catch (error) {
          live.dataset.active = "0"; // webui restarting: back off, try later
        }
      }
      window.setTimeout(refresh, delay());
    }

    window.setTimeout(refresh, delay());
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
