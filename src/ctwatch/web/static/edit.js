// Saves the watchlist or the policy through the API with the token typed on the page.
// Only textContent is ever written: server messages are shown as text, never parsed as HTML.
"use strict";
(function () {
  const token = document.getElementById("token");
  token.value = sessionStorage.getItem("ctwatch-token") || "";
  for (const button of document.querySelectorAll("button[data-api]")) {
    button.addEventListener("click", async function () {
      const status = document.getElementById(button.dataset.status);
      const text = document.getElementById(button.dataset.source).value;
      sessionStorage.setItem("ctwatch-token", token.value);
      status.className = "";
      status.textContent = "saving…";
      try {
        const response = await fetch(button.dataset.api, {
          method: "PUT",
          headers: {"Content-Type": "application/json", "Authorization": "Bearer " + token.value},
          body: JSON.stringify({text: text}),
        });
        const answer = await response.json();
        status.className = response.ok ? "ok" : "error";
        status.textContent = response.ok ? "saved" : "not saved: " + answer.error;
      } catch (err) {
        status.className = "error";
        status.textContent = "not saved: " + err;
      }
    });
  }
})();
