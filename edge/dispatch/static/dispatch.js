// The live alert list: new alerts and review changes arrive over server-sent events (/events)
// and are put into the table without a reload. Text only (textContent), never HTML.
"use strict";
(function () {
  var rows = document.getElementById("alert-rows");
  if (!rows || !rows.dataset.live || !window.EventSource) { return; }
  var fmt = function (x, digits) { return Number(x).toFixed(digits); };
  var cell = function (tr, text, href) {
    var td = document.createElement("td");
    if (href) {
      var a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    tr.appendChild(td);
    return td;
  };
  var addAlert = function (a) {
    if (rows.querySelector('tr[data-alert="' + a.alert_id + '"]')) { return; }
    var href = "/alerts/" + encodeURIComponent(a.alert_id);
    var tr = document.createElement("tr");
    tr.dataset.alert = a.alert_id;
    tr.className = "state-" + a.state + " fresh";
    cell(tr, a.received_at, href);
    cell(tr, a.event_time);
    cell(tr, a.device_id);
    cell(tr, a.location && a.location.name ? a.location.name : "");
    var entry = cell(tr, a.entry.label, href);
    if (a.test) {
      var tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = "test";
      entry.appendChild(document.createTextNode(" "));
      entry.appendChild(tag);
    }
    cell(tr, a.watchlist.id + " v" + a.watchlist.version);
    cell(tr, fmt(a.score, 3) + " / " + fmt(a.threshold, 3));
    cell(tr, fmt(a.quality, 2));
    cell(tr, a.state).className = "state";
    rows.insertBefore(tr, rows.firstChild);
    var empty = document.getElementById("empty");
    if (empty) { empty.remove(); }
  };
  var events = new EventSource("/events");
  var live = document.getElementById("live");
  events.onopen = function () { if (live) { live.classList.remove("down"); } };
  events.onerror = function () { if (live) { live.classList.add("down"); } };
  events.addEventListener("alert", function (e) { addAlert(JSON.parse(e.data)); });
  events.addEventListener("review", function (e) {
    var r = JSON.parse(e.data);
    var tr = rows.querySelector('tr[data-alert="' + r.alert_id + '"]');
    if (!tr) { return; }
    tr.className = "state-" + r.state;
    var state = tr.querySelector("td.state");
    if (state) { state.textContent = r.state; }
  });
})();
