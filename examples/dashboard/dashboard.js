// SPDX-License-Identifier: Apache-2.0
// secure_dashboard's page: applies the updates /events pushes (Server-Sent Events).
//
// Topics and payloads come from devices, and rejected messages from anyone who can publish: they
// are only ever set with textContent or as attribute values, never parsed as markup. (The
// server's Content-Security-Policy also forbids inline script and, with Trusted Types, any
// assignment to an HTML sink such as innerHTML.)
"use strict";

(function () {
  const palette = ["#1a73e8", "#d93025", "#188038", "#f9ab00", "#9334e6", "#e8710a", "#12b5cb", "#c5221f",
                   "#5f6368", "#b06000"];

  const byId = (id) => document.getElementById(id);
  const topicsBody = byId("topics").tBodies[0];
  const rejectionsBody = byId("rejections").tBodies[0];
  const reasonsBody = byId("reasons").tBodies[0];

  let limits = { topics: 0, points_per_topic: 600, history_seconds: 600, rejections: 200, value_bytes: 256,
                 chart_topics: 10 };
  const rows = new Map();      // topic row id -> {tr, cells}
  const series = new Map();    // topic row id -> chart dataset
  let chart = null;

  function cell(tr, className) {
    const td = document.createElement("td");
    td.className = className;
    tr.appendChild(td);
    return td;
  }

  function clock(ms) {
    return ms ? new Date(ms).toLocaleTimeString() : "";
  }

  function makeChart() {
    if (typeof window.Chart !== "function") {
      byId("chart-note").textContent = "Chart library not available (the dashboard serves Debian's libjs-chart.js).";
      return null;
    }
    return new window.Chart(byId("chart"), {
      type: "line",
      data: { datasets: [] },
      options: {
        animation: false,
        parsing: false,
        maintainAspectRatio: false,
        spanGaps: true,
        elements: { point: { radius: 2 }, line: { borderWidth: 2 } },
        scales: {
          x: { type: "linear", ticks: { callback: (v) => clock(v), maxTicksLimit: 8 } },
          y: { type: "linear" },
        },
        plugins: {
          legend: { position: "bottom" },
          tooltip: { callbacks: {
            title: (items) => (items.length ? clock(items[0].parsed.x) : ""),
            label: (item) => item.dataset.topic + ": " + item.formattedValue,
          } },
        },
      },
    });
  }

  function reset() {
    rows.clear();
    series.clear();
    topicsBody.replaceChildren();
    rejectionsBody.replaceChildren();
    if (chart) {
      chart.data.datasets = [];
    }
  }

  function applyTopic(t) {
    let row = rows.get(t.id);
    if (!row) {
      const tr = document.createElement("tr");
      tr.setAttribute("data-topic", t.topic);
      row = { tr, topic: cell(tr, "topic"), value: cell(tr, "value"), key: cell(tr, "key-id"),
              signed: cell(tr, "signed"), count: cell(tr, "count") };
      row.topic.textContent = t.topic;
      rows.set(t.id, row);
      topicsBody.appendChild(tr);
    }
    row.value.textContent = t.value + (t.truncated ? " …" : "");
    row.value.setAttribute("data-format", t.value_format);
    row.value.title = t.size + " bytes" + (t.value_format === "hex" ? ", not UTF-8: shown in hex" : "");
    row.key.textContent = t.key_id;
    row.signed.textContent = clock(t.signed_ms);
    row.signed.title = new Date(t.signed_ms).toISOString();
    row.count.textContent = String(t.count);
    if (t.charted && t.points.length > 0) addPoints(t);
  }

  // The server picks the topics to chart (the first with numeric readings) and sends their points.
  function addPoints(t) {
    if (!chart) return;
    let set = series.get(t.id);
    if (!set) {
      const color = palette[chart.data.datasets.length % palette.length];
      // The legend is drawn on the canvas (no markup); a long topic is cut there, whole in the tooltip.
      const label = t.topic.length > 60 ? t.topic.slice(0, 57) + "…" : t.topic;
      set = { label, topic: t.topic, data: [], borderColor: color, backgroundColor: color };
      series.set(t.id, set);
      chart.data.datasets.push(set);
    }
    for (const [x, y] of t.points) set.data.push({ x, y });
    const newest = set.data[set.data.length - 1].x;
    const oldest = newest - limits.history_seconds * 1000;
    let drop = 0;
    while (drop < set.data.length && (set.data.length - drop > limits.points_per_topic || set.data[drop].x < oldest)) {
      drop += 1;
    }
    if (drop > 0) set.data.splice(0, drop);
  }

  function applyRejection(r, fresh) {
    const tr = document.createElement("tr");
    cell(tr, "time").textContent = clock(r.time_ms);
    cell(tr, "reason").textContent = r.reason;
    cell(tr, "topic").textContent = r.topic;
    if (fresh) tr.className = "fresh";
    rejectionsBody.insertBefore(tr, rejectionsBody.firstChild);
  }

  function applyStats(stats) {
    byId("verified-total").textContent = String(stats.verified);
    byId("rejected-total").textContent = String(stats.rejected);
    byId("reconnects").textContent = String(stats.reconnects);
    byId("connection-losses").textContent = String(stats.connection_losses);
    for (const [reason, count] of Object.entries(stats.rejected_by_reason)) {
      let tr = reasonsBody.querySelector('tr[data-reason="' + CSS.escape(reason) + '"]');
      if (!tr) {
        tr = document.createElement("tr");
        tr.setAttribute("data-reason", reason);
        cell(tr, "reason").textContent = reason;
        cell(tr, "count");
        reasonsBody.appendChild(tr);
      }
      tr.cells[1].textContent = String(count);
      tr.className = count > 0 ? "nonzero" : "";
    }
  }

  function apply(update) {
    limits = update.limits;
    if (update.full) reset();
    for (const t of update.topics) applyTopic(t);
    for (const old of rejectionsBody.querySelectorAll("tr.fresh")) old.className = "";
    for (const r of update.rejections) applyRejection(r, !update.full);
    while (rejectionsBody.rows.length > limits.rejections) rejectionsBody.deleteRow(-1);
    applyStats(update.stats);

    const connection = byId("connection");
    connection.setAttribute("data-state", update.connection.state);
    connection.textContent = update.connection.state;
    byId("connection-detail").textContent = update.connection.detail;

    const notes = [];
    if (update.topics_dropped > 0) {
      notes.push(update.topics_dropped + " verified messages on topics beyond the first " + limits.topics +
                 " are counted but not shown.");
    }
    byId("topics-note").textContent = notes.join(" ");
    if (chart) {
      byId("chart-note").textContent = (update.numeric_topics > limits.chart_topics
        ? "Showing the first " + limits.chart_topics + " of " + update.numeric_topics + " topics with numeric readings. " : "") +
        "Last " + Math.round(limits.history_seconds / 60) + " minutes, at most " + limits.points_per_topic +
        " points per topic.";
      chart.update("none");
    }
    byId("rejections-note").textContent = "The last " + limits.rejections + " rejections are listed; counts above are totals.";
  }

  function live(on) {
    document.body.setAttribute("data-live", on ? "1" : "0");
    byId("live").textContent = on ? "live" : "not live (reconnecting)";
  }

  // EventSource reconnects by itself after a broken stream (the next update is whole), but not
  // after an error status such as 503 (too many live views open): then this retries.
  function listen() {
    const events = new EventSource("/events");
    events.onopen = () => live(true);
    events.onerror = () => {
      live(false);
      if (events.readyState === EventSource.CLOSED) setTimeout(listen, 5000);
    };
    events.onmessage = (e) => {
      live(true);
      apply(JSON.parse(e.data));
    };
  }

  chart = makeChart();
  listen();
})();
