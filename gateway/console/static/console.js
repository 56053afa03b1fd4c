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
