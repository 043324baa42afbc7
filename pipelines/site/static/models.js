// Filter, search and sort the models table. The table is complete without this script.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var table = document.getElementById("models");
  if (!form || !table) { return; }
  form.hidden = false;
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var shown = document.getElementById("shown");
  var controls = { q: "q", cls: "f-class", org: "f-org", open: "f-open", year: "f-year", conf: "f-conf" };
  Object.keys(controls).forEach(function (k) { controls[k] = document.getElementById(controls[k]); });
  function apply() {
    var q = controls.q.value.trim().toLowerCase();
    var n = 0;
    rows.forEach(function (r) {
      var ok = (!q || r.dataset.search.indexOf(q) !== -1) &&
        (!controls.cls.value || (" " + r.dataset.classes + " ").indexOf(" " + controls.cls.value + " ") !== -1) &&
        (!controls.org.value || r.dataset.org === controls.org.value) &&
        (!controls.open.value || r.dataset.open === controls.open.value) &&
        (!controls.year.value || r.dataset.year === controls.year.value) &&
        (!controls.conf.value || r.dataset.confidence === controls.conf.value);
      r.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = n + " of " + rows.length + " shown";
  }
  form.addEventListener("input", apply);
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
    if (!th.dataset.sort) { return; }
    th.tabIndex = 0;
    th.setAttribute("aria-sort", "none");
    function sort() {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (o) { if (o.dataset.sort) { o.setAttribute("aria-sort", "none"); } });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var key = function (r) {
        var c = r.cells[i];
        if (th.dataset.sort === "num") { var v = c.dataset.value; return v === "" ? null : Number(v); }
        return c.textContent.trim().toLowerCase();
      };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === y) { return 0; }
        if (x === null || x === "") { return 1; }
        if (y === null || y === "") { return -1; }
        return (x < y ? -1 : 1) * (asc ? 1 : -1);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
  });
  apply();
}());
