// Waits for the phone's answer with a long poll, then reloads the page, which shows the
// outcome or continues the sign-in. Without JavaScript the page refreshes itself instead.
(function () {
  "use strict";
  var box = document.getElementById("confirm-wait");
  if (!box) {
    return;
  }
  var url = box.getAttribute("data-wait-url");
  // Another way of confirming (a passkey) may finish first and navigate away; a reload after
  // that would pull the browser back to this page. The passkey script raises this flag.
  // If the passkey fails, the wait resumes.
  var leaving = false;
  var stopped = false;
  document.addEventListener("confirm:leaving", function () {
    leaving = true;
  });
  document.addEventListener("confirm:staying", function () {
    leaving = false;
    if (stopped) {
      stopped = false;
      wait();
    }
  });

  function again(delay) {
    window.setTimeout(wait, delay);
  }

  function wait() {
    if (leaving) {
      stopped = true;
      return;
    }
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (body) {
        if (leaving) {
          stopped = true;
          return;
        }
        box.setAttribute("data-state", body.state);
        if (body.state === "pending") {
          again(body.retry_after_ms || 0); // the server may ask for a pause when busy
        } else {
          window.location.reload();
        }
      })
      .catch(function () {
        again(3000); // the network or the server hiccuped: try again shortly
      });
  }

  wait();
})();
