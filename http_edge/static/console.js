// The console's few enhancements: errors shown where the answer was awaited, Ctrl+Enter runs
// the query, a dataset's button queries it, and uploads report their progress.
(function () {
  function errorText(xhr) {
    try { return JSON.parse(xhr.responseText).error; } catch (e) { return xhr.status + " " + xhr.statusText; }
  }
  function showError(target, text) {
    target.innerHTML = "";
    var p = document.createElement("p");
    p.className = "error"; p.setAttribute("role", "alert"); p.textContent = text;
    target.appendChild(p);
  }
  document.body.addEventListener("htmx:responseError", function (event) {
    if (event.detail.xhr.status === 401) { window.location.reload(); return; }
    showError(event.detail.target, errorText(event.detail.xhr));
  });
  var sql = document.getElementById("sql");
  if (sql) {
    sql.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { htmx.trigger("#sql-form", "submit"); event.preventDefault(); }
    });
  }
  document.body.addEventListener("click", function (event) {
    var peek = event.target.closest(".peek");
    if (!peek) return;
    sql.value = peek.dataset.sql;
    htmx.trigger("#sql-form", "submit");
  });
  var form = document.getElementById("upload-form");
  if (!form) return;
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var file = document.getElementById("upload-file").files[0];
    var name = document.getElementById("upload-name").value;
    var mode = document.getElementById("upload-mode").value;
    var progress = document.getElementById("upload-progress");
    var result = document.getElementById("upload-result");
    var body = new FormData();
    body.append("file", file, file.name);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/ingest?name=" + encodeURIComponent(name) + "&mode=" + encodeURIComponent(mode));
    xhr.upload.onprogress = function (e) { if (e.lengthComputable) progress.value = 100 * e.loaded / e.total; };
    xhr.onload = function () {
      progress.hidden = true;
      if (xhr.status === 401) { window.location.reload(); return; }
      if (xhr.status !== 200) { showError(result, errorText(xhr)); return; }
      var answer = JSON.parse(xhr.responseText);
      result.textContent = answer.rows.toLocaleString() + " rows into " + answer.name + " (version " + answer.manifest.version + ")";
      htmx.trigger("#datasets", "refresh");
    };
    xhr.onerror = function () { progress.hidden = true; showError(result, "the upload failed: the server could not be reached"); };
    progress.value = 0; progress.hidden = false; result.textContent = "";
    xhr.send(body);
  });
})();
