// The console's one script. Times: the page carries UTC (<time datetime=... title=UTC>); here
// they are shown in the browser's own time zone, UTC staying on hover. The live alert list: new
// alerts and review changes arrive over server-sent events (/events) and are put into the
// table without a reload. Text only (textContent), never HTML.
"use strict";
(function () {
  var parts = {
    month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  };
  var thisYear = new Intl.DateTimeFormat(undefined, parts);
  var otherYear = new Intl.DateTimeFormat(undefined, Object.assign({ year: "numeric" }, parts));
  var showLocal = function (el) {
    var moment = new Date(el.getAttribute("datetime"));
    if (isNaN(moment.getTime())) { return; }
    var sameYear = moment.getFullYear() === new Date().getFullYear();
    el.textContent = (sameYear ? thisYear : otherYear).format(moment);
  };
  var timeElement = function (iso) {
    var el = document.createElement("time");
    el.className = "local";
    el.setAttribute("datetime", iso);
    el.title = iso.replace("T", " ").replace("Z", " UTC");
    el.textContent = iso;
    showLocal(el);
    return el;
  };
  Array.prototype.forEach.call(document.querySelectorAll("time.local"), showLocal);

  var rows = document.getElementById("alert-rows");
  if (!rows || !rows.dataset.live || !window.EventSource) { return; }
  var fmt = function (x, digits) { return Number(x).toFixed(digits); };
  var duration = function (s) {
    var sign = s < 0 ? "-" : "";
    s = Math.abs(s);
    if (s < 10) { return sign + s.toFixed(1) + " s"; }
    var minutes = Math.floor(Math.round(s) / 60), hours = Math.floor(Math.round(s) / 3600);
    if (minutes === 0) { return sign + Math.round(s) + " s"; }
    if (hours === 0) { return sign + minutes + " min"; }
    if (hours < 24) { return sign + hours + " h " + (minutes % 60) + " min"; }
    return sign + Math.floor(hours / 24) + " d " + (hours % 24) + " h";
  };
  var tag = function (kind, text, title) {
    var span = document.createElement("span");
    span.className = "tag " + kind;
    span.textContent = text;
    span.title = title;
    return span;
  };
  var cell = function (tr, content, href) {
    var td = document.createElement("td");
    var node = typeof content === "string" ? document.createTextNode(content) : content;
    if (href) {
      var a = document.createElement("a");
      a.href = href;
      a.appendChild(node);
      td.appendChild(a);
    } else {
      td.appendChild(node);
    }
    tr.appendChild(td);
    return td;
  };
  var addAlert = function (a) {
    if (rows.querySelector('tr[data-alert="' + a.alert_id + '"]')) { return; }
    var href = "/alerts/" + encodeURIComponent(a.alert_id);
    var tr = document.createElement("tr");
    tr.dataset.alert = a.alert_id;
    tr.className = "state-" + a.state + " fresh" + (a.test ? " test" : "") + (a.late ? " late" : "");
    cell(tr, timeElement(a.received_at), href);
    var captured = cell(tr, timeElement(a.event_time));
    if (a.late) {
      captured.appendChild(document.createTextNode(" "));
      captured.appendChild(tag("late", "late " + duration(a.delay_s),
        "arrived " + duration(a.delay_s) + " after it was captured"));
    }
    cell(tr, a.device_id);
    cell(tr, a.location && a.location.name ? a.location.name : "");
    var person = document.createElement("span");
    if (a.test) {
      person.appendChild(tag("test", "TEST",
        "a test alert (edge alerts test, or the demo): not a real sighting"));
      person.appendChild(document.createTextNode(" "));
    }
    var link = document.createElement("a");
    link.href = href;
    link.title = "entry id " + a.entry.id;
    link.textContent = a.entry.label;
    person.appendChild(link);
    cell(tr, person);
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
  events.addEventListener("ready", function () {  // subscribed: no alert is missed from now
    if (live) { live.classList.remove("down"); live.classList.add("up"); }
  });
  events.onerror = function () {
    if (live) { live.classList.remove("up"); live.classList.add("down"); }
  };
  events.addEventListener("alert", function (e) { addAlert(JSON.parse(e.data)); });
  events.addEventListener("review", function (e) {
    var r = JSON.parse(e.data);
    var tr = rows.querySelector('tr[data-alert="' + r.alert_id + '"]');
    if (!tr) { return; }
    Array.prototype.slice.call(tr.classList).forEach(function (c) {
      if (c.indexOf("state-") === 0) { tr.classList.remove(c); }
    });
    tr.classList.add("state-" + r.state);
    var state = tr.querySelector("td.state");
    if (state) { state.textContent = r.state; }
  });
})();
