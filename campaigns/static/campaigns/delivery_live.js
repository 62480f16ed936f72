// The delivery page's counts while a campaign sends: read from the delivery API
// every few seconds and written into the table in place, with no page reload.
// Polling stops once the send is over (sent or cancelled).
(function () {
  "use strict";
  var table = document.getElementById("counts");
  if (!table || table.dataset.live !== "1") {
    return;
  }
  var state = document.getElementById("send-state");
  var labels = JSON.parse(document.getElementById("send-state-labels").textContent);
  var every = Number(table.dataset.every) || 3000;

  function show(data) {
    Object.keys(data.counts).forEach(function (status) {
      var cell = table.querySelector('td[data-status="' + status + '"]');
      if (cell) {
        cell.textContent = String(data.counts[status]);
      }
    });
    state.textContent = labels[data.send_state] || data.send_state;
    table.dataset.live = data.send_state === "sending" ? "1" : "0";
    return data.send_state === "sending";
  }

  function poll() {
    fetch(table.dataset.url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (reply) {
        if (!reply.ok) {
          throw new Error("HTTP " + reply.status);
        }
        return reply.json();
      })
      .then(function (data) {
        if (show(data)) {
          setTimeout(poll, every);
        }
      })
      .catch(function () {
        setTimeout(poll, every * 2); // a failed poll (network, restart) is tried again, less often
      });
  }

  setTimeout(poll, every);
})();
