/* The live parts of the template and campaign pages: the preview beside the form, the audience
   estimate while the audience is edited, and the status, progress bar and results of a send. */
(function () {
  "use strict";

  function csrf() {
    const field = document.querySelector("[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function debounce(fn, ms) {
    let timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  async function post(url, data) {
    const answer = await fetch(url, {method: "POST", body: data, credentials: "same-origin",
                                     headers: {"X-CSRFToken": csrf()}});
    return answer.json();
  }

  function fieldValue(form, name) {
    const field = form.elements[name];
    if (!field) return null;
    if (field instanceof RadioNodeList || (field.length && field.tagName !== "SELECT")) {
      return Array.from(field).filter((box) => box.checked).map((box) => box.value);
    }
    if (field.type === "checkbox") return field.checked ? [field.value] : [];
    return field.value;
  }

  // Changes made through select2 (the autocomplete fields) are jQuery events only.
  function onChange(form, names, callback) {
    const handler = (event) => { if (!names || names.includes(event.target.name)) callback(); };
    form.addEventListener("change", handler);
    form.addEventListener("input", handler);
    if (window.django && window.django.jQuery) window.django.jQuery(form).on("change", "select", handler);
  }

  function setupPreview(form) {
    const panel = document.getElementById("compose-preview");
    if (!panel) return;
    const names = panel.dataset.fields.split(",");
    const defaults = JSON.parse(panel.dataset.defaults || "{}");  // a read-only page has no fields
    async function refresh() {
      const data = new FormData();
      for (const name of names) {
        let value = fieldValue(form, name);
        if (value === null && name in defaults) value = String(defaults[name]);
        if (Array.isArray(value)) value.forEach((v) => data.append(name, v));
        else if (value !== null) data.append(name, value);
      }
      data.append("recipient", document.getElementById("preview-recipient").value);
      data.append("locale", document.getElementById("preview-locale").value);
      const shown = await post(panel.dataset.url, data);
      const error = document.getElementById("preview-error");
      error.hidden = !shown.error;
      error.textContent = shown.error || "";
      if (shown.error) return;
      for (const cell of panel.querySelectorAll("[data-field]")) cell.textContent = shown.fields[cell.dataset.field];
      const html = document.getElementById("preview-email-html");
      html.srcdoc = shown.fields.email_html;
      html.hidden = !shown.fields.email_html;
      document.getElementById("preview-note").textContent = shown.note;
      document.getElementById("preview-sms").textContent = "SMS: " + shown.sms;
      panel.dataset.rendered = String(Number(panel.dataset.rendered || 0) + 1);
    }
    document.getElementById("preview-refresh").addEventListener("click", (event) => {
      event.preventDefault();
      refresh();
    });
    for (const id of ["preview-recipient", "preview-locale"]) {
      document.getElementById(id).addEventListener("keydown", (event) => {
        if (event.key === "Enter") { event.preventDefault(); refresh(); }  // never submit the form
      });
    }
    onChange(form, names, debounce(refresh, 400));
    refresh();
  }

  function setupEstimate(form) {
    const box = document.getElementById("campaign-estimate");
    if (!box) return;
    const names = ["audience_kind", "topic", "segment", "member_csv"];
    const refresh = debounce(async function () {
      const data = new FormData();
      for (const name of ["audience_kind", "topic", "segment"]) {
        const value = fieldValue(form, name);
        if (value !== null) data.append(name, value);
      }
      const upload = form.elements.member_csv;
      if (upload && upload.files && upload.files.length) data.append("member_csv", upload.files[0]);
      data.append("campaign", box.dataset.campaign || "");
      box.textContent = "counting…";
      const answer = await post(box.dataset.url, data);
      box.textContent = answer.text;
      box.dataset.users = answer.users === null ? "" : String(answer.users);
    }, 300);
    onChange(form, names, refresh);
    if (!box.dataset.campaign) refresh();
  }

  function setupProgress() {
    const box = document.getElementById("campaign-progress");
    if (!box) return;
    const results = document.getElementById("campaign-results");
    let lastStatus = null;
    let resultsAt = 0;
    async function loadResults() {
      if (!results) return;
      resultsAt = Date.now();
      const answer = await (await fetch(results.dataset.url, {credentials: "same-origin"})).json();
      results.innerHTML = answer.html;
    }
    async function tick() {
      try {
        const s = await (await fetch(box.dataset.url, {credentials: "same-origin"})).json();
        const bar = document.getElementById("campaign-progress-bar");
        bar.max = Math.max(s.targeted, 1);
        bar.value = s.done;
        document.getElementById("campaign-progress-text").textContent =
          `${s.status_label}: ${s.done.toLocaleString()} of ${s.targeted.toLocaleString()} — sent ${s.sent}, ` +
          `failed ${s.failed}, throttled ${s.throttled}, skipped ${s.skipped}, ${s.rate}/s`;
        const waves = document.getElementById("campaign-waves");
        if (waves && waves.innerHTML !== s.waves_html) waves.innerHTML = s.waves_html;
        const status = document.getElementById("campaign-status");
        if (status) { status.textContent = s.status_label; status.dataset.status = s.status; }
        // the results are a GROUP BY over the delivery records: every 5 s at most while sending; after
        // that every 30 s, since receipts (delivered, bounced, opened...) keep coming in
        const resultsEvery = s.status === "running" ? 5000 : 30000;
        if (s.status !== lastStatus || Date.now() - resultsAt > resultsEvery) loadResults();
        lastStatus = s.status;
      } catch (e) { /* the next tick tries again */ }
      setTimeout(tick, lastStatus === "running" ? 1000 : 3000);
    }
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    const form = document.querySelector("#content-main form");
    if (form) {
      setupPreview(form);
      setupEstimate(form);
    }
    setupProgress();
  });
})();
