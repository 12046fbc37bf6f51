// Waits for the phone's answer with a long poll, then reloads the page, which shows the
// outcome or continues the sign-in. Without JavaScript the page refreshes itself instead.
// Where the IdP runs a waiter (data-waiter-url, with a wait ticket) the page waits there, with
// no cookie; when the waiter cannot tell (Redis away, a refused ticket, the network), the next
// wait is the IdP's own long poll, whose answers are the same.
(function () {
  "use strict";
  var box = document.getElementById("confirm-wait");
  if (!box) {
    return;
  }
  var url = box.getAttribute("data-wait-url");
  var waiterUrl = box.getAttribute("data-waiter-url");
  // The waiter answers within its hold: past this, it is stuck (or its sockets exhausted) and
  // a request that never ends would leave the page waiting for ever.
  var waiterPatience = Number(box.getAttribute("data-waiter-timeout-ms")) || 35000;
  var viaIdpOnce = false;
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
    var atWaiter = Boolean(waiterUrl) && !viaIdpOnce;
    viaIdpOnce = false;
    var timer = null;
    var request;
    if (atWaiter) {
      var abort = new AbortController();
      timer = window.setTimeout(function () {
        waiterUrl = null; // a waiter that does not answer in time is not asked again
        abort.abort();
      }, waiterPatience);
      request = fetch(waiterUrl, {
        credentials: "omit",
        mode: "cors",
        headers: { Accept: "application/json" },
        signal: abort.signal
      });
    } else {
      request = fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    }
    request
      .then(function (response) {
        if (atWaiter && response.status === 403) {
          waiterUrl = null; // the ticket is spent or expired: the IdP knows the rest
          return { state: "pending" };
        }
        if (!response.ok && !(atWaiter && response.status === 429)) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (body) {
        window.clearTimeout(timer);
        if (leaving) {
          stopped = true;
          return;
        }
        box.setAttribute("data-state", body.state);
        if (body.state === "pending") {
          viaIdpOnce = Boolean(body.fallback);
          again(body.retry_after_ms || 0); // the server may ask for a pause when busy
        } else {
          window.location.reload();
        }
      })
      .catch(function () {
        window.clearTimeout(timer);
        if (atWaiter) {
          viaIdpOnce = true; // the waiter is unreachable: ask the IdP now
          again(0);
        } else {
          again(3000); // the network or the server hiccuped: try again shortly
        }
      });
  }

  wait();
})();
