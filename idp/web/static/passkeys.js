// Passkey ceremonies: the server gives WebAuthn options as JSON (base64url for bytes), the
// browser runs navigator.credentials, the answer goes back as JSON. No framework needed.
(function () {
  "use strict";

  function fromB64url(value) {
    var text = atob(value.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((value.length + 3) % 4));
    var bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i += 1) {
      bytes[i] = text.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var text = "";
    for (var i = 0; i < bytes.length; i += 1) {
      text += String.fromCharCode(bytes[i]);
    }
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function post(url, csrf, body, extra) {
    var headers = { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf };
    Object.keys(extra || {}).forEach(function (name) { headers[name] = extra[name]; });
    return fetch(url, { method: "POST", credentials: "same-origin", headers: headers, body: body })
      .then(function (response) {
        return response.json().then(function (json) {
          if (!response.ok) {
            throw new Error(json.error || "HTTP " + response.status);
          }
          return json;
        });
      });
  }

  function credentialJson(credential) {
    var response = credential.response;
    var out = { id: credential.id, rawId: toB64url(credential.rawId), type: credential.type,
                clientExtensionResults: credential.getClientExtensionResults(), response: {
                  clientDataJSON: toB64url(response.clientDataJSON) } };
    if (response.attestationObject) {
      out.response.attestationObject = toB64url(response.attestationObject);
      out.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      out.response.authenticatorData = toB64url(response.authenticatorData);
      out.response.signature = toB64url(response.signature);
      out.response.userHandle = response.userHandle ? toB64url(response.userHandle) : null;
    }
    if (credential.authenticatorAttachment) {
      out.authenticatorAttachment = credential.authenticatorAttachment;
    }
    return out;
  }

  function show(status, text) {
    if (status) {
      status.textContent = text;
      status.hidden = false;
    }
  }

  var add = document.getElementById("add-passkey");
  if (add) {
    add.addEventListener("click", function () {
      var status = document.getElementById("passkey-status");
      post(add.dataset.optionsUrl, add.dataset.csrf, "{}").then(function (options) {
        options.challenge = fromB64url(options.challenge);
        options.user.id = fromB64url(options.user.id);
        (options.excludeCredentials || []).forEach(function (c) { c.id = fromB64url(c.id); });
        return navigator.credentials.create({ publicKey: options });
      }).then(function (credential) {
        var name = (document.getElementById("passkey-name") || {}).value || "";
        return post(add.dataset.finishUrl, add.dataset.csrf, JSON.stringify(credentialJson(credential)),
                    { "X-Passkey-Name": encodeURIComponent(name) });
      }).then(function () {
        window.location.reload();
      }).catch(function (error) {
        show(status, add.dataset.failed + " (" + error.message + ")");
      });
    });
  }

  var use = document.getElementById("use-passkey");
  if (use) {
    use.addEventListener("click", function () {
      var status = document.getElementById("passkey-status");
      // The page's wait for the phone sees this login end as soon as the passkey's answer is
      // taken, before this script hears back: it must not reload the page meanwhile (the
      // login, used by then, would show as expired).
      document.documentElement.setAttribute("data-leaving", "passkey");
      post(use.dataset.optionsUrl, use.dataset.csrf, "{}").then(function (options) {
        options.challenge = fromB64url(options.challenge);
        (options.allowCredentials || []).forEach(function (c) { c.id = fromB64url(c.id); });
        return navigator.credentials.get({ publicKey: options });
      }).then(function (credential) {
        return post(use.dataset.loginUrl, use.dataset.csrf, JSON.stringify(credentialJson(credential)));
      }).then(function (answer) {
        window.location.assign(answer.next);
      }).catch(function (error) {
        document.documentElement.removeAttribute("data-leaving");
        show(status, use.dataset.failed + " (" + error.message + ")");
      });
    });
  }
})();
