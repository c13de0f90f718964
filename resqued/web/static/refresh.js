// Auto-refresh of the live pages: the server says how often (data-refresh,
// seconds; 0 for none); the checkbox turns it off, remembered per browser.
(function () {
  var period = parseInt(document.body.getAttribute("data-refresh"), 10) || 0;
  var toggle = document.getElementById("refresh-toggle");
  if (!period || !toggle) return;
  var key = "resqued-web-refresh";
  var timer = null;
  function arm() {
    clearTimeout(timer);
    if (toggle.checked) timer = setTimeout(function () { location.reload(); }, period * 1000);
  }
  toggle.checked = localStorage.getItem(key) !== "off";
  toggle.addEventListener("change", function () {
    localStorage.setItem(key, toggle.checked ? "on" : "off");
    arm();
  });
  arm();
})();
