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
  var events = null;
  async function refresh() {
    try {
      var r = await fetch(location.href, { credentials: "same-origin", headers: { "x-p0-refresh": "1" } });
      if (!r.ok || r.redirected) {
        // The session ended: stop; a reload signs in again.
        if (events) events.close();
        return;
      }
      var doc = new DOMParser().parseFromString(await r.text(), "text/html");
      var fresh = doc.getElementById("main");
      if (fresh) {
        // Buttons take no click for a moment after the content moved, so that a click meant
        // for one request never lands on another that slid under the pointer.
        fresh.classList.add("settling");
        document.getElementById("main").replaceWith(fresh);
        setTimeout(function () { fresh.classList.remove("settling"); }, 1000);
        tick();
      }
    } catch (e) { /* the next event tries again */ }
  }
  if (window.EventSource && document.body.getAttribute("data-page")) {
    events = new EventSource("/console/events");
    events.addEventListener("changed", refresh);
  }
  tick();
  setInterval(tick, 1000);
})();
