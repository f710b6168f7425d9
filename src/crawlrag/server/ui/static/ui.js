// Live progress on the Jobs page: poll /jobs.json and update the rows in place. Everything else works without JS.
(function () {
  "use strict";
  var table = document.querySelector("table[data-live-jobs]");
  if (!table || !window.fetch) {
    return;
  }
  var source = table.getAttribute("data-live-jobs");
  var note = document.getElementById("live-status");
  // Only a job's change of status is announced to screen readers, not every refresh.
  var announce = document.getElementById("live-announce");
  var shown = {};
  table.querySelectorAll("tr[data-job-id]").forEach(function (row) {
    shown[row.getAttribute("data-job-id")] = field(row, "status").textContent;
  });
  var ACTIVE_MS = 1000;
  var IDLE_MS = 5000;

  function field(row, name) {
    return row.querySelector('[data-field="' + name + '"]');
  }

  function show(row, job) {
    var status = field(row, "status");
    if (shown[job.job_id] && shown[job.job_id] !== job.status) {
      announce.textContent = "Crawl of " + row.querySelector(".url").textContent + " is " + job.status + ".";
    }
    shown[job.job_id] = job.status;
    status.textContent = job.status;
    status.className = "status status-" + job.status;
    var bar = field(row, "bar");
    bar.max = job.pages_total || 1;
    if (job.pages_total) {
      bar.value = job.pages_done;
    } else if (job.finished) {
      bar.value = 1;
    } else {
      bar.removeAttribute("value");
    }
    field(row, "pages").textContent = job.pages_done + (job.pages_total ? " / " + job.pages_total : "") + " pages";
    field(row, "counts").textContent = job.pages_failed + " failed, " + job.pages_skipped + " skipped";
    field(row, "chunks").textContent = job.chunks_stored.toLocaleString("en-US");
    var error = field(row, "error");
    error.textContent = job.error || "";
    error.hidden = !job.error;
    row.querySelector('form[data-action="cancel"]').hidden = !job.can_cancel;
    row.querySelector('form[data-action="resume"]').hidden = !job.can_resume;
  }

  function poll() {
    fetch(source, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        var active = false;
        var unseen = 0;
        data.jobs.forEach(function (job) {
          var row = document.getElementById("job-" + job.job_id);
          if (row) {
            show(row, job);
          } else {
            unseen += 1;
          }
          active = active || !job.finished;
        });
        note.textContent = "Live: updated " + new Date().toLocaleTimeString() +
          (unseen ? " · " + unseen + " new job(s), reload to see them" : "");
        window.setTimeout(poll, active ? ACTIVE_MS : IDLE_MS);
      })
      .catch(function () {
        note.textContent = "Live updates paused (the server did not answer); retrying.";
        window.setTimeout(poll, IDLE_MS);
      });
  }

  note.textContent = "Live: waiting for the first update.";
  poll();
})();
