// Waits for the phone's answer with a long poll, then reloads the page, which shows the
// outcome or continues the sign-in. Without JavaScript the page refreshes itself instead.
(function () {
  "use strict";
  var box = document.getElementById("confirm-wait");
  if (!box) {
    return;
  }
  var url = box.getAttribute("data-wait-url");

  function again(delay) {
    window.setTimeout(wait, delay);
  }

  function wait() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (body) {
        box.setAttribute("data-state", body.state);
        if (body.state === "pending") {
          again(body.retry_after_ms || 0); // the server may ask for a pause when busy
        } else if (!document.documentElement.hasAttribute("data-leaving")) {
          window.location.reload(); // not while a passkey carries the sign-in on
        }
      })
      .catch(function () {
        again(3000); // the network or the server hiccuped: try again shortly
      });
  }

  wait();
})();
