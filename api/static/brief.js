// Brief editor: live shortlist preview (debounced POST of the form to a page endpoint that
// answers an HTML fragment), and polling of the stored shortlist while the worker computes it.
// No framework, no build step; the pages work without it (the preview just does not update).
(function () {
  "use strict";
  var form = document.getElementById("brief-form");
  var preview = document.getElementById("preview");
  if (form && preview) {
    var timer = null;
    var seq = 0;
    var refresh = function () {
      var mine = ++seq;
      var body = new FormData(form);
      body.delete("action");
      preview.setAttribute("aria-busy", "true");
      fetch(preview.dataset.url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-CSRF-Token": body.get("csrf_token") || "" },
      })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          if (mine === seq) { preview.innerHTML = html; } // drop answers that arrive late
        })
        .catch(function () { /* keep the last good preview */ })
        .finally(function () { if (mine === seq) preview.setAttribute("aria-busy", "false"); });
    };
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 350);
    });
  }
  var stored = document.getElementById("shortlist");
  if (stored && stored.dataset.poll) {
    var tries = 0;
    var poll = function () {
      tries += 1;
      fetch(stored.dataset.poll, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          stored.innerHTML = html;
          if (html.indexOf("shortlist-pending") !== -1 && tries < 60) setTimeout(poll, 1000);
        })
        .catch(function () { if (tries < 60) setTimeout(poll, 2000); });
    };
    setTimeout(poll, 1000);
  }
})();
