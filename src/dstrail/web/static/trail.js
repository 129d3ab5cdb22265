// The audit trail page: word suggestions in the query box, forms that apply as they change, the
// chart's zoom (click a bar, or drag across) and the live view (new events, without reloading).
(function () {
  "use strict";

  var WORDS = ["kind", "name", "ds", "user", "project", "run", "key"];

  function customChip() {
    var chip = document.getElementById("custom-chip");
    if (!chip) return;
    chip.addEventListener("click", function (event) {
      var box = document.getElementById("filter-box");
      var range = document.getElementById("range");
      if (box) box.open = true;
      if (range) range.value = "custom";
      var start = document.getElementById("start");
      if (start) { start.focus(); event.preventDefault(); }
    });
  }

  function autosubmit() {
    document.querySelectorAll("[data-autosubmit]").forEach(function (input) {
      input.addEventListener("change", function () {
        if (input.form && input.form.requestSubmit) input.form.requestSubmit();
        else if (input.form) input.form.submit();
      });
    });
  }

  function wordSuggestions() {
    var input = document.getElementById("q");
    if (!input) return;
    var list = document.getElementById(input.getAttribute("list"));
    var kinds = (input.dataset.kinds || "").split(",");
    var timer = null;
    function show(head, values) {
      list.textContent = "";
      values.slice(0, 20).forEach(function (value) {
        var option = document.createElement("option");
        option.value = head + value;
        list.appendChild(option);
      });
    }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var value = input.value;
        var cut = value.lastIndexOf(" ");
        var head = value.slice(0, cut + 1);
        var word = value.slice(cut + 1);
        var colon = word.indexOf(":");
        if (colon < 0) {
          show(head, WORDS.filter(function (w) { return w.indexOf(word.toLowerCase()) === 0; })
            .map(function (w) { return w + ":"; }));
          return;
        }
        var key = word.slice(0, colon).toLowerCase();
        var part = word.slice(colon + 1);
        if (key === "kind") {
          show(head + "kind:", kinds.filter(function (k) {
            return k.toLowerCase().indexOf(part.toLowerCase()) >= 0;
          }));
        } else if (key === "name" && part) {
          fetch(input.dataset.suggestNames + "?q=" + encodeURIComponent(part), {
            credentials: "same-origin", headers: { "Accept": "application/json" }
          }).then(function (r) { return r.ok ? r.json() : []; })
            .then(function (names) { show(head + "name:", names); })
            .catch(function () {});
        }
      }, 120);
    });
  }

  // -- the chart: a click on a bar zooms to its time, a drag to the time dragged across ------

  function chart() {
    var svg = document.getElementById("chart-svg");
    if (!svg) return;
    var selection = document.getElementById("chart-selection");
    var hits = Array.prototype.map.call(svg.querySelectorAll("rect.hit"), function (rect) {
      return {
        rect: rect, x: parseFloat(rect.getAttribute("x")), w: parseFloat(rect.getAttribute("width")),
        start: Date.parse(rect.dataset.start), end: Date.parse(rect.dataset.end)
      };
    });
    if (!hits.length) return;
    var left = hits[0].x;
    var right = hits[hits.length - 1].x + hits[hits.length - 1].w;
    var from = null;
    var pressed = null;

    function svgX(event) {
      var point = svg.createSVGPoint();
      point.x = event.clientX; point.y = event.clientY;
      return point.matrixTransform(svg.getScreenCTM().inverse()).x;
    }
    function timeAt(x) {
      x = Math.min(Math.max(x, left), right - 0.001);
      for (var i = 0; i < hits.length; i++) {
        var h = hits[i];
        if (x >= h.x && x < h.x + h.w) return Math.round(h.start + (h.end - h.start) * (x - h.x) / h.w);
      }
      return hits[hits.length - 1].end;
    }
    function zoom(start, end) {
      var base = svg.dataset.zoom;
      var sep = base.slice(-1) === "?" ? "" : "&";
      window.location.assign(base + sep + "range=custom&start=" + encodeURIComponent(new Date(start).toISOString()) +
        "&end=" + encodeURIComponent(new Date(end).toISOString()));
    }
    svg.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) return;
      from = svgX(event);
      pressed = event.target.closest ? event.target.closest("rect.hit") : null;
      svg.setPointerCapture(event.pointerId);
      event.preventDefault();
    });
    svg.addEventListener("pointermove", function (event) {
      if (from === null) return;
      var x = Math.min(Math.max(svgX(event), left), right);
      selection.setAttribute("x", Math.min(from, x));
      selection.setAttribute("width", Math.abs(x - from));
    });
    svg.addEventListener("pointerup", function (event) {
      if (from === null) return;
      var to = svgX(event);
      var started = from;
      from = null;
      selection.setAttribute("width", 0);
      if (Math.abs(to - started) > 4) {
        zoom(timeAt(Math.min(started, to)), timeAt(Math.max(started, to)));
      } else if (pressed) {
        zoom(Date.parse(pressed.dataset.start), Date.parse(pressed.dataset.end));
      }
    });
    svg.addEventListener("pointercancel", function () { from = null; selection.setAttribute("width", 0); });
  }

  // -- the live view ----------------------------------------------------------------------------

  var localFormat = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  });

  function localTime(row) {
    row.querySelectorAll("time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime()) || el.dataset.local) return;
      var span = document.createElement("span");
      span.className = "local";
      span.textContent = localFormat.format(when);
      span.title = "your local time";
      el.dataset.local = "1";
      (el.closest("a") || el).insertAdjacentElement("afterend", span);
    });
  }

  function count(text) { return parseInt(String(text).replace(/[^0-9]/g, ""), 10) || 0; }
  function grouped(n) { return n.toLocaleString("en-US"); }

  function live() {
    var box = document.getElementById("trail-table");
    if (!box || !box.dataset.liveUrl) return;
    var seq = parseInt(box.dataset.liveSeq, 10);
    var size = parseInt(box.dataset.size, 10) || 50;
    var every = parseInt(box.dataset.liveInterval, 10) || 2000;
    var status = document.getElementById("live-status");
    var busy = false;
    var timer = null;

    function add(html) {
      var rows = document.getElementById("event-rows");
      if (!rows) return 0;
      var holder = document.createElement("tbody");
      holder.innerHTML = html;
      var first = rows.firstElementChild;
      var added = 0;
      Array.prototype.slice.call(holder.children).forEach(function (row) {
        if (rows.querySelector('tr[data-seq="' + row.dataset.seq + '"]')) return;
        row.classList.add("new");
        rows.insertBefore(row, first);
        localTime(row);
        added += 1;
      });
      while (rows.children.length > size) rows.removeChild(rows.lastElementChild);
      return added;
    }
    function counted(added) {
      ["total", "position-total"].forEach(function (id) {
        var el = document.getElementById(id);
        if (el) el.textContent = grouped(count(el.textContent) + added);
      });
      var last = document.getElementById("position-last");
      var rows = document.getElementById("event-rows");
      if (last && rows) last.textContent = grouped(rows.children.length);
      var empty = document.getElementById("empty");
      if (empty) empty.hidden = true;
      var holder = box.querySelector(".live-holder");
      if (holder) holder.hidden = false;
    }
    function say(text) { if (status) status.textContent = text; }
    function poll() {
      if (busy || document.hidden) return;
      busy = true;
      fetch(box.dataset.liveUrl + "&since=" + seq, {
        credentials: "same-origin", headers: { "Accept": "application/json" }
      }).then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      }).then(function (data) {
        if (data.seq > seq) seq = data.seq;
        if (!data.rows) return;
        var added = add(data.html);
        if (added) {
          counted(added);
          say(added + " new event" + (added === 1 ? "" : "s") + " at " + new Date().toLocaleTimeString() + " (your time).");
        }
      }).catch(function (error) {
        clearInterval(timer);
        say("Live stopped (" + error.message + "): reload the page to start it again.");
      }).then(function () { busy = false; });
    }
    timer = setInterval(poll, every);
  }

  document.addEventListener("DOMContentLoaded", function () {
    customChip();
    autosubmit();
    wordSuggestions();
    chart();
    live();
  });
})();
