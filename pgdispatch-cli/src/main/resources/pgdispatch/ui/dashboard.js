// pgdispatch dashboard: draws the throughput chart from the numbers the server put in data attributes
// (no inline script: the Content-Security-Policy allows scripts from this site only).
(function () {
  "use strict";
  var el = document.getElementById("throughput");
  if (!el || typeof uPlot === "undefined") return;
  function nums(name) {
    var s = el.getAttribute("data-" + name);
    return s ? s.split(",").map(Number) : [];
  }
  var data = [nums("minutes"), nums("claimed"), nums("succeeded"), nums("failed")];
  var opts = {
    width: Math.max(400, el.clientWidth - 16),
    height: 260,
    scales: { y: { range: function (u, min, max) { return [0, Math.max(5, max)]; } } },
    axes: [{}, { label: "tasks per minute" }],
    series: [
      {},
      { label: "claimed", stroke: "#2f6feb", width: 2 },
      { label: "succeeded", stroke: "#12b76a", width: 2 },
      { label: "failed", stroke: "#d92d20", width: 2 }
    ]
  };
  new uPlot(opts, data, el);
})();
