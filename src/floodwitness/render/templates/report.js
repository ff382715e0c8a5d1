// floodwitness report: draws the charts from the embedded data and makes the tables sortable.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("fw-data").textContent);

  function timelineRows(tl) {
    // a long timeline is stored in segments (per minute around incidents, summed over hours elsewhere): each
    // point's counts are sums over its minutes, shown per second and per minute like the others
    var segments = tl.segments && tl.segments.length ? tl.segments
      : [{start: tl.start, step_ms: tl.step_ms, points: tl.requests.length}];
    var rows = [];
    var i = 0;
    segments.forEach(function (seg, k) {
      var minutes = seg.step_ms / 60000;
      for (var j = 0; j < seg.points; j++, i++) {
        var n = tl.requests[i];
        rows.push({
          t: seg.start + j * seg.step_ms,
          "requests/s": n / (60 * minutes),
          "baseline/s": tl.baseline_requests[i] == null ? null : tl.baseline_requests[i] / (60 * minutes),
          "distinct clients": tl.clients[i] / minutes,
          "new clients": tl.new_clients.length ? tl.new_clients[i] / minutes : null,
          "5xx share": n && tl.status_5xx[i] != null ? tl.status_5xx[i] / n : null,  // null: statuses not logged
          "4xx share": n && tl.status_4xx[i] != null ? tl.status_4xx[i] / n : null,
          "p50": tl.p50_request_time.length ? tl.p50_request_time[i] : null,
          "p95": tl.p95_request_time.length ? tl.p95_request_time[i] : null
        });
      }
      var end = seg.start + seg.points * seg.step_ms;
      var next = segments[k + 1];
      if (next && next.start > end) {  // a gap between periods: no request logged until the next segment
        rows.push({t: end, "requests/s": 0, "baseline/s": 0, "distinct clients": 0, "new clients": 0,
                   "5xx share": null, "4xx share": null, "p50": null, "p95": null});
      }
    });
    return rows;
  }

  function sized(spec, width) {
    var copy = JSON.parse(JSON.stringify(spec));
    (copy.vconcat || [copy]).forEach(function (view) { view.width = width; });
    return copy;
  }

  var datasets = {timeline: timelineRows(data.timeline), incidents: data.incidents, baseline: data.baseline,
                  networks: data.networks, gaps: data.gaps || []};
  var options = {renderer: "svg", mode: "vega-lite",
                 actions: {export: true, source: false, compiled: false, editor: false}};

  function draw(id, spec) {
    var el = document.getElementById(id);
    if (!el) { return Promise.resolve(); }
    var full = sized(spec, Math.max(el.clientWidth - (id === "chart-networks" ? 330 : 130), 300));
    full.datasets = datasets;
    return vegaEmbed(el, full, options).catch(function (err) {
      el.textContent = "The chart could not be drawn: " + err;
      el.className += " chart-error";
      throw err;
    });
  }

  var charts = [draw("chart-timeline", data.specs.timeline)];
  if (data.networks.length) { charts.push(draw("chart-networks", data.specs.networks)); }
  Promise.all(charts).then(function () {
    document.body.setAttribute("data-charts-ms", String(Math.round(performance.now())));
    document.body.setAttribute("data-charts", "ok");
  }, function (err) {
    document.body.setAttribute("data-charts", "error");
    console.error("floodwitness: chart failed", err);
  });

  // sortable tables: click a header; numbers sort by their data-v value
  function key(cell, numeric) {
    if (!cell) { return numeric ? -Infinity : ""; }
    var v = cell.getAttribute("data-v");
    if (numeric) { var x = parseFloat(v === null ? cell.textContent.replace(/[^0-9.eE+-]/g, "") : v);
                   return isNaN(x) ? -Infinity : x; }
    return (v === null ? cell.textContent : v).toLowerCase();
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, col) {
      th.addEventListener("click", function () {
        var numeric = th.classList.contains("n");
        var asc = th.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("thead th").forEach(function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col], numeric), y = key(b.cells[col], numeric);
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });

  // the full blocklist, as the plain CIDR lines of `--blocklist`
  var button = document.getElementById("download-blocklist");
  if (button) {
    button.addEventListener("click", function () {
      var text = JSON.parse(document.getElementById("fw-blocklist").textContent);
      var link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([text], {type: "text/plain"}));
      link.download = "blocklist.txt";
      document.body.appendChild(link);
      link.click();
      link.remove();
    });
  }
})();
