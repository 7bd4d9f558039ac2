// The console's only script: refreshes the page's content when the server says what it shows
// changed (server-sent events), and counts down the time left on leases.
(function () {
  "use strict";
  function tick() {
    var now = Date.now() / 1000;
    document.querySelectorAll("[data-until]").forEach(function (el) {
      var left = Math.max(0, Math.round(Number(el.getAttribute("data-until")) - now));
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = (h ? h + "h " : "") + (h || m ? m + "m " : "") + s + "s";
    });
  }
  async function refresh() {
    try {
      var r = await fetch(location.href, { credentials: "same-origin" });
      if (!r.ok || r.redirected) return;
      var doc = new DOMParser().parseFromString(await r.text(), "text/html");
      var fresh = doc.getElementById("main");
      if (fresh) {
        document.getElementById("main").replaceWith(fresh);
        tick();
      }
    } catch (e) { /* the next event tries again */ }
  }
  if (window.EventSource && document.body.getAttribute("data-page")) {
    var events = new EventSource("/console/events");
    events.addEventListener("changed", refresh);
  }
  tick();
  setInterval(tick, 1000);
})();
