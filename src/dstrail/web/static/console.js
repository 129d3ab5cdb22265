// dstrail console: local times beside UTC, and data source name suggestions. No dependencies.
(function () {
  "use strict";

  function localTimes() {
    var fmt = new Intl.DateTimeFormat(undefined, {
      year: "numeric", month: "short", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
    });
    document.querySelectorAll("time[datetime]").forEach(function (el) {
      if (el.dataset.local) return;
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) return;
      var span = document.createElement("span");
      span.className = "local";
      span.textContent = fmt.format(when);
      span.title = "your local time";
      el.dataset.local = "1";
      // Outside a link, so that the link's name stays the time it shows (UTC).
      var link = el.closest("a");
      (link || el).insertAdjacentElement("afterend", span);
    });
  }

  function suggestions() {
    document.querySelectorAll("input[data-suggest]").forEach(function (input) {
      var list = document.getElementById(input.getAttribute("list"));
      var timer = null;
      var last = null;
      input.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () {
          var value = input.value;
          var cut = value.lastIndexOf(",");
          var head = cut >= 0 ? value.slice(0, cut + 1) + " " : "";
          var prefix = value.slice(cut + 1).trim();
          if (prefix === last) return;
          last = prefix;
          fetch(input.dataset.suggest + "?q=" + encodeURIComponent(prefix), {
            credentials: "same-origin", headers: { "Accept": "application/json" }
          }).then(function (r) { return r.ok ? r.json() : []; }).then(function (names) {
            list.textContent = "";
            names.forEach(function (name) {
              var option = document.createElement("option");
              option.value = head + name;
              list.appendChild(option);
            });
            input.dataset.suggested = names.join(",");
          }).catch(function () {});
        }, 120);
      });
    });
  }

  function customRange() {
    var select = document.getElementById("range");
    if (!select) return;
    ["start", "end"].forEach(function (id) {
      var input = document.getElementById(id);
      if (input) input.addEventListener("input", function () { select.value = "custom"; });
    });
  }

  function compactFilters() {
    var box = document.getElementById("filter-box");
    if (box && window.matchMedia("(max-width: 560px)").matches && !document.querySelector(".alert.error")) {
      box.open = false;
    }
  }

  // The permission editor's user list: a search box that narrows it (without JS the whole
  // list shows, and the box stays hidden), and the count of ticked users.
  function userPicker() {
    var picker = document.getElementById("user-picker");
    if (!picker) return;
    var search = document.getElementById("user-search");
    var empty = document.getElementById("user-search-empty");
    var count = document.getElementById("user-count");
    var items = picker.querySelectorAll("li[data-username]");
    function counted() {
      var ticked = picker.querySelectorAll("input[name=user_ids]:checked").length;
      if (count) count.textContent = ticked + " chosen";
    }
    picker.addEventListener("change", counted);
    if (!search) return;
    search.closest(".user-search").hidden = false;
    search.addEventListener("input", function () {
      var needle = search.value.trim().toLowerCase();
      var shown = 0;
      items.forEach(function (item) {
        var match = !needle || item.dataset.username.indexOf(needle) >= 0;
        item.hidden = !match;
        if (match) shown += 1;
      });
      if (empty) empty.hidden = shown > 0;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    userPicker();
    compactFilters();
    localTimes();
    suggestions();
    customRange();
  });
})();
