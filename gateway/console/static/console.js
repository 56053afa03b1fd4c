// Progressive enhancement only: every form works without this file.
// Copy buttons copy the value of the field they name.
document.addEventListener("click", function (e) {
  var b = e.target.closest("button[data-copy]");
  if (!b) return;
  e.preventDefault();
  var field = document.getElementById(b.getAttribute("data-copy"));
  if (!field) return;
  field.select();
  var live = document.getElementById("live");
  var done = function () {
    b.textContent = "Copied";
    if (live) live.textContent = "Copied to the clipboard.";
    setTimeout(function () { b.textContent = "Copy"; if (live) live.textContent = ""; }, 1500);
  };
  if (navigator.clipboard) { navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); }); }
  else { document.execCommand("copy"); done(); }
});
// Confirmation for destructive forms (the server asks again without JS).
document.addEventListener("submit", function (e) {
  var msg = e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) e.preventDefault();
});
// A line that waits for something (the setup link's first SCIM request)
// asks its URL every few seconds and says so once the key is true.
document.querySelectorAll("[data-poll]").forEach(function (el) {
  var url = el.getAttribute("data-poll"), key = el.getAttribute("data-poll-key");
  var timer = setInterval(function () {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (v) {
        if (v && v[key]) { el.textContent = el.getAttribute("data-poll-done"); clearInterval(timer); }
      }, function () {});
  }, 2000);
});
