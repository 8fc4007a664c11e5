// The timeline page's script: the knowledge-time control applies on change, and the live
// view follows GET /v1/events/live, adding each new event's mark (rendered by the server)
// without a reload. The page works without it; it never writes event text as HTML itself.
(function () {
  "use strict";

  var main = document.getElementById("main");
  var form = document.getElementById("view");
  if (!main || !form) return;

  // -- the knowledge-time control ------------------------------------------------------------
  var slider = document.getElementById("at");
  var output = document.getElementById("at-value");
  var labelTimer = null;

  function describe(position) {
    var max = Number(slider.max);
    if (position >= max) {
      output.textContent = "position " + max + " of " + max + ": now";
      return;
    }
    output.textContent = "position " + position + " of " + max;
    if (position === 0) {
      output.textContent += ", before the first event";
      return;
    }
    clearTimeout(labelTimer);
    labelTimer = setTimeout(function () {
      fetch("/v1/events?limit=1&after=" + (position - 1), { headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (page) {
          if (page && page.events.length && Number(slider.value) === position) {
            output.textContent = "position " + position + " of " + max + ", recorded " + page.events[0].recorded_at;
          }
        })
        .catch(function () {});
    }, 120);
  }

  if (slider) {
    slider.addEventListener("input", function () { describe(Number(slider.value)); });
    slider.addEventListener("change", function () {
      // the head is "now": leave `at` out of the URL, so the view stays live
      if (Number(slider.value) >= Number(slider.max)) slider.disabled = true;
      form.submit();
    });
  }

  // -- live updates ------------------------------------------------------------------------------
  var status = document.getElementById("live-status");
  if (main.dataset.live !== "true" || !window.EventSource || !window.fetch) return;

  var query = main.dataset.query;
  var markUrl = main.dataset.markUrl;
  var queue = [];
  var busy = false;
  var panelsTimer = null;
  var MAX_QUEUE = 50;

  function setStatus(text, state) {
    status.textContent = text;
    status.className = "live-status " + state;
  }

  function withQuery(url) {
    return query ? url + (url.indexOf("?") < 0 ? "?" : "&") + query : url;
  }

  function laneFor(name) {
    var lanes = document.getElementById("lanes");
    var all = lanes.querySelectorAll("section.lane");
    for (var i = 0; i < all.length; i++) {
      if (all[i].dataset.lane === name) return all[i];
    }
    var template = document.getElementById("lane-template");
    var lane = template.content.firstElementChild.cloneNode(true);
    lane.dataset.lane = name;
    lane.setAttribute("aria-label", main.dataset.lanes + ": " + name);
    lane.querySelector(".lane-name").textContent = name;
    lanes.appendChild(lane);
    var empty = document.getElementById("empty-timeline");
    if (empty) empty.hidden = true;
    return lane;
  }

  function insert(html) {
    var holder = document.createElement("template");
    holder.innerHTML = html.trim(); // rendered and escaped by the server's templates
    var item = holder.content.querySelector("li.mark");
    if (!item || document.getElementById(item.id)) return;
    var lane = laneFor(item.dataset.lane);
    var list = lane.querySelector("ol.marks");
    var next = null;
    var items = list.children;
    for (var i = 0; i < items.length; i++) {
      if (items[i].dataset.sort > item.dataset.sort) { next = items[i]; break; }
    }
    list.insertBefore(item, next);
    lane.querySelector(".count").textContent = String(list.children.length);
    var count = document.getElementById("timeline-count");
    count.textContent = String(document.querySelectorAll("#lanes li.mark").length);
    item.classList.add("new");
    setTimeout(function () { item.classList.remove("new"); }, 4000);
    setStatus("Live: added " + item.querySelector(".type").textContent + " (position " + item.dataset.position + ")", "connected");
  }

  function markTarget(event) {
    // a retraction strikes its target through, a dispute marks it, at once
    var target = event.data && document.getElementById("ev-" + event.data.event_id);
    if (!target) return;
    var head = target.querySelector(".mark-head");
    var badge = document.createElement("span");
    if (event.type === "EventRetracted" && !target.classList.contains("retracted")) {
      target.classList.add("retracted");
      badge.className = "badge badge-retracted";
      badge.textContent = "Retracted";
      head.appendChild(badge);
    } else if (event.type === "ReportDisputed" && !target.classList.contains("disputed")) {
      target.classList.add("disputed");
      badge.className = "badge badge-disputed";
      badge.textContent = "Disputed";
      head.appendChild(badge);
    }
  }

  function next() {
    if (busy || !queue.length) return;
    busy = true;
    var position = queue.shift();
    fetch(withQuery(markUrl + "?position=" + position), { headers: { Accept: "text/html" } })
      .then(function (r) { return r.status === 200 ? r.text() : ""; })
      .then(function (html) { if (html) insert(html); })
      .catch(function () {})
      .then(function () { busy = false; next(); });
  }

  function refreshPanels() {
    clearTimeout(panelsTimer);
    panelsTimer = setTimeout(function () {
      fetch(withQuery(main.dataset.panelsUrl), { headers: { Accept: "text/html" } })
        .then(function (r) { return r.ok ? r.text() : ""; })
        .then(function (html) {
          if (!html) return;
          var holder = document.createElement("template");
          holder.innerHTML = html; // the server's templates, escaped there
          ["headline-slot", "overview-slot", "audit-slot"].forEach(function (id) {
            var fresh = holder.content.getElementById ? holder.content.getElementById(id) : holder.content.querySelector("#" + id);
            var old = document.getElementById(id);
            if (fresh && old) old.replaceWith(fresh);
          });
        })
        .catch(function () {});
    }, 600);
  }

  // the whole feed (the page's filters are applied by the mark fragment); on reconnection the
  // browser sends Last-Event-ID, which the server prefers to `after`
  var source = new EventSource(main.dataset.liveUrl + "?after=" + main.dataset.after);
  source.addEventListener("open", function () { setStatus("Live: new events appear as they are recorded", "connected"); });
  source.addEventListener("error", function () { setStatus("Live updates interrupted: reconnecting…", "reconnecting"); });
  source.addEventListener("recorded", function (message) {
    var event = JSON.parse(message.data);
    markTarget(event);
    main.dataset.after = String(event.position);
    if (slider && event.position > Number(slider.max)) {
      // the live view stays at the head: the control's range grows with the log
      slider.max = String(event.position);
      slider.value = String(event.position);
      slider.disabled = false;
      describe(event.position);
    }
    if (queue.length >= MAX_QUEUE) {
      var more = document.getElementById("live-more");
      more.hidden = false;
      more.querySelector("a").href = window.location.href;
    } else {
      queue.push(event.position);
      next();
    }
    refreshPanels();
  });
})();
