// Staff console: confirmations, printing and the live SMS preview. No inline scripts (CSP).
"use strict";

(function () {
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-print]")) {
      window.print();
    }
  });

  function parsePairs(text) {
    var values = {};
    text.split(/\r?\n/).forEach(function (line) {
      var match = line.match(/^\s*([A-Za-z_][A-Za-z0-9_]*)\s*[=:]\s*(.*?)\s*$/);
      if (match) {
        values[match[1]] = match[2];
      }
    });
    return values;
  }

  function setupPreview() {
    var box = document.querySelector("[data-preview]");
    var form = document.getElementById("notice-form");
    if (!box || !form) {
      return;
    }
    var labels = box.querySelector("[data-preview-labels]").dataset;
    var bodyEl = box.querySelector("[data-preview-body]");
    var meterEl = box.querySelector("[data-preview-meter]");
    var errorEl = box.querySelector("[data-preview-error]");
    var partsEl = box.querySelector("[data-preview-parts]");
    var sample = {};
    try {
      sample = JSON.parse(box.getAttribute("data-sample") || "{}");
    } catch (e) {
      sample = {};
    }
    var timer = null;
    var sequence = 0;

    function showError(text) {
      errorEl.textContent = text;
      errorEl.classList.toggle("hidden", !text);
    }

    function render(result) {
      bodyEl.textContent = result.body;
      meterEl.textContent = result.encoding + " · " + result.characters + " " + labels.characters +
        " · " + result.segments + " " + labels.segments + " · " +
        result.cost_vnd.toLocaleString(labels.lang === "vi" ? "vi-VN" : "en-US") + " ₫";
      meterEl.dataset.segments = result.segments;
      meterEl.dataset.encoding = result.encoding;
      partsEl.textContent = "";
      if (result.parts.length > 1) {
        result.parts.forEach(function (part) {
          var item = document.createElement("li");
          item.textContent = part;
          partsEl.appendChild(item);
        });
      }
      showError(result.within_limit ? "" : labels.over + ": " +
        (labels.lang === "vi" ? result.limit_error_vi : result.limit_error));
    }

    function refresh() {
      var data = new FormData(form);
      var template = data.get("template") || null;
      var body = data.get("body") || "";
      if (!template && !body.trim()) {
        return;
      }
      var personalisation = Object.assign({}, sample);
      var pairs = form.querySelector("[data-pairs]");
      if (pairs) {
        Object.assign(personalisation, parsePairs(pairs.value));
      }
      var payload = {
        template: template,
        body: template ? null : body,
        language: data.get("language") || "vi",
        personalisation: personalisation
      };
      var mine = ++sequence;
      fetch("/api/v1/preview", {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
        body: JSON.stringify(payload)
      }).then(function (response) {
        return response.json().then(function (json) {
          return {ok: response.ok, json: json};
        });
      }).then(function (answer) {
        if (mine !== sequence) {
          return;
        }
        if (answer.ok) {
          render(answer.json);
        } else {
          showError(answer.json.detail || answer.json.title);
        }
      }).catch(function () {});
    }

    form.addEventListener("input", function (event) {
      if (event.target.hasAttribute("data-preview-input")) {
        clearTimeout(timer);
        timer = setTimeout(refresh, 250);
      }
    });
    form.addEventListener("change", function (event) {
      if (event.target.hasAttribute("data-preview-input")) {
        refresh();
      }
    });
    refresh();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setupPreview);
  } else {
    setupPreview();
  }
})();
