// studytrack dashboard: draws GET /api/events/ (fill=true) as a stacked bar chart with totals.
// Plain browser JavaScript, no build step; Chart.js is vendored in ./vendor (see README.md).
// Test hook: #chart carries data-state (loading|ready|error), data-bucket-count, data-series and
// data-duration, and window.studytrackChart holds the last drawn data.
(() => {
  "use strict";

  const TOKEN_KEY = "studytrack.token";
  const PALETTE = ["#2f6fb0", "#e08a1e", "#2a9d74", "#c0559b", "#5fb3e4", "#cf4f2a", "#7d5fb2", "#b8a31f", "#6b7280"];
  const UNIT_FORMATS = {
    minute: { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" },
    hour: { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" },
    day: { weekday: "short", month: "short", day: "numeric" },
    week: { month: "short", day: "numeric" },
    month: { month: "short", year: "numeric" },
    year: { year: "numeric" },
  };

  const $ = (id) => document.getElementById(id);
  const els = {
    controls: $("controls"),
    duration: $("duration"),
    tags: $("tags"),
    start: $("start"),
    end: $("end"),
    tz: $("tz"),
    timezones: $("timezones"),
    csv: $("download-csv"),
    error: $("error"),
    figure: $("chart"),
    canvas: $("chart-canvas"),
    empty: $("chart-empty"),
    totalTime: $("total-time"),
    totalSessions: $("total-sessions"),
    byTag: $("by-tag").querySelector("tbody"),
    subtitle: $("subtitle-duration"),
    tokenPanel: $("token-panel"),
    tokenForm: $("token-form"),
    token: $("token"),
    tokenClear: $("token-clear"),
    tokenState: $("token-state"),
  };

  let chart = null;
  let inFlight = null; // { controller, key } of the request being answered
  let zoneGuessed = false; // #tz holds the browser's zone, not one chosen in the page or the address

  // ---- API token: localStorage, sent as a Bearer header on every request --------------------------------

  function readToken() {
    try {
      return localStorage.getItem(TOKEN_KEY) || "";
    } catch {
      return "";
    }
  }

  function storeToken(token) {
    try {
      if (token) localStorage.setItem(TOKEN_KEY, token);
      else localStorage.removeItem(TOKEN_KEY);
    } catch {
      showError("This browser does not allow storing the API token (localStorage is blocked).");
    }
    showTokenState();
  }

  function showTokenState() {
    const set = readToken() !== "";
    els.tokenState.textContent = set ? "set" : "not set";
    els.tokenState.classList.toggle("is-set", set);
    els.token.value = "";
    els.token.placeholder = set ? "a token is saved; paste another to replace it" : "paste a token";
  }

  function apiFetch(path, params, { accept = "application/json", signal } = {}) {
    const url = new URL(path, document.baseURI);
    url.search = params.toString();
    const headers = { Accept: accept };
    const token = readToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    return fetch(url, { headers, signal, credentials: "same-origin", cache: "no-store" });
  }

  async function errorText(response) {
    let message = "";
    let code = "";
    try {
      const body = await response.json();
      if (body && typeof body.message === "string") message = body.message;
      if (body && typeof body.code === "string") code = body.code;
    } catch {
      // not our JSON error shape (a proxy, perhaps): fall back to the status line
    }
    const status = `HTTP ${response.status}${code ? `, ${code}` : ""}`;
    let text = message ? `${message} (${status})` : `The server answered ${response.status} ${response.statusText}`;
    if (response.status === 401 || response.status === 403) {
      text += readToken() ? ". Check the API token above." : ". Set an API token above.";
      els.tokenPanel.open = true;
    }
    return text;
  }

  // ---- controls <-> page URL --------------------------------------------------------------------------

  function parseTags(text) {
    const tags = text.split(",").map((tag) => tag.trim().toLowerCase()).filter(Boolean);
    return [...new Set(tags)];
  }

  function todayIn(tz) {
    try {
      return new Intl.DateTimeFormat("en-CA", { timeZone: tz }).format(new Date());
    } catch {
      return new Date().toISOString().slice(0, 10);
    }
  }

  function addDays(isoDate, days) {
    const [y, m, d] = isoDate.split("-").map(Number);
    return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
  }

  function browserTimeZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    } catch {
      return "UTC";
    }
  }

  function initControls() {
    // A token in the address (`?token=`, or `#token=` which never reaches server logs) is taken once: kept in
    // this browser, and removed from the address bar and history.
    const url = new URL(window.location.href);
    const fragment = new URLSearchParams(url.hash.slice(1));
    const token = fragment.get("token") ?? url.searchParams.get("token");
    if (token !== null) {
      storeToken(token.trim());
      url.searchParams.delete("token");
      fragment.delete("token");
      url.hash = fragment.toString();
      window.history.replaceState(null, "", url);
    }
    const q = url.searchParams;
    if (q.get("duration") && [...els.duration.options].some((o) => o.value === q.get("duration"))) {
      els.duration.value = q.get("duration");
    }
    els.tags.value = q.getAll("tags").join(", ");
    zoneGuessed = !q.get("tz");
    els.tz.value = q.get("tz") || browserTimeZone();
    const today = todayIn(els.tz.value);
    els.end.value = q.get("to") || today;
    els.start.value = q.get("from") || addDays(els.end.value, -29);
    if (typeof Intl.supportedValuesOf === "function") {
      const zones = ["UTC", ...Intl.supportedValuesOf("timeZone").filter((zone) => zone !== "UTC")];
      els.timezones.replaceChildren(...zones.map((zone) => new Option(zone)));
    }
  }

  function rememberControls() {
    const url = new URL(window.location.href);
    url.search = "";
    url.searchParams.set("duration", els.duration.value);
    for (const tag of parseTags(els.tags.value)) url.searchParams.append("tags", tag);
    url.searchParams.set("from", els.start.value);
    url.searchParams.set("to", els.end.value);
    url.searchParams.set("tz", els.tz.value.trim());
    window.history.replaceState(null, "", url);
  }

  function bucketParams() {
    if (!els.start.value || !els.end.value) throw new Error("Choose both a From and a To date.");
    if (els.start.value > els.end.value) throw new Error("From must be on or before To.");
    const params = new URLSearchParams();
    params.set("duration", els.duration.value);
    for (const tag of parseTags(els.tags.value)) params.append("tags", tag);
    params.set("start", els.start.value);
    params.set("end", addDays(els.end.value, 1)); // the API's end is exclusive; "To" is inclusive
    params.set("tz", els.tz.value.trim() || "UTC");
    params.set("fill", "true");
    return params;
  }

  // ---- formatting -------------------------------------------------------------------------------------

  function formatMinutes(minutes) {
    const h = Math.floor(minutes / 60);
    const m = Math.round(minutes % 60);
    if (h === 0) return `${m}m`;
    return m === 0 ? `${h}h` : `${h}h ${m}m`;
  }

  function plural(n, word) {
    return `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
  }

  // A bucket reads "2025-01-06T00:00:00+01:00": its local wall time is the text before the offset.
  function localParts(bucket) {
    const [, y, mo, d, h, mi] = bucket.match(/^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/).map(Number);
    return new Date(Date.UTC(y, mo - 1, d, h, mi));
  }

  function bucketFormatter(duration, buckets) {
    const unit = duration.replace(/^\d+\s+/, "").replace(/s$/, "");
    const options = { ...(UNIT_FORMATS[unit] || UNIT_FORMATS.day), timeZone: "UTC" };
    const years = new Set(buckets.map((bucket) => bucket.slice(0, 4)));
    if (years.size > 1 && !options.year) options.year = "numeric";
    const format = new Intl.DateTimeFormat(undefined, options);
    return (bucket) => format.format(localParts(bucket));
  }

  // ---- drawing ----------------------------------------------------------------------------------------

  function shape(series) {
    const buckets = [];
    const index = new Map();
    const tagSet = new Set();
    for (const item of series.items) {
      if (!index.has(item.bucket)) {
        index.set(item.bucket, buckets.length);
        buckets.push(item.bucket);
      }
      tagSet.add(item.tag);
    }
    const tags = [...tagSet].sort();
    const rows = new Map(tags.map((tag) => [tag, { minutes: buckets.map(() => 0), counts: buckets.map(() => 0) }]));
    for (const item of series.items) {
      const row = rows.get(item.tag);
      row.minutes[index.get(item.bucket)] += item.minutes;
      row.counts[index.get(item.bucket)] += item.count;
    }
    const byTag = tags.map((tag) => ({
      tag,
      minutes: rows.get(tag).minutes.reduce((a, b) => a + b, 0),
      sessions: rows.get(tag).counts.reduce((a, b) => a + b, 0),
    }));
    const totals = {
      minutes: byTag.reduce((a, t) => a + t.minutes, 0),
      sessions: byTag.reduce((a, t) => a + t.sessions, 0),
      byTag,
    };
    return { buckets, tags, rows, totals };
  }

  function renderTotals(totals, tags) {
    els.totalTime.textContent = formatMinutes(totals.minutes);
    els.totalTime.title = plural(totals.minutes, "minute");
    els.totalSessions.textContent = `${plural(totals.sessions, "session")} · ${plural(totals.minutes, "minute")}`;
    const rows = totals.byTag.map((entry) => {
      const tr = document.createElement("tr");
      const name = document.createElement("th");
      name.scope = "row";
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.backgroundColor = PALETTE[tags.indexOf(entry.tag) % PALETTE.length];
      name.append(swatch, entry.tag);
      const share = totals.minutes ? Math.round((100 * entry.minutes) / totals.minutes) : 0;
      const cells = [formatMinutes(entry.minutes), entry.sessions.toLocaleString(), `${share}%`].map((text) => {
        const td = document.createElement("td");
        td.textContent = text;
        return td;
      });
      tr.dataset.tag = entry.tag;
      tr.append(name, ...cells);
      return tr;
    });
    if (rows.length === 0) {
      const none = document.createElement("td");
      none.colSpan = 4;
      none.className = "none";
      none.textContent = "No sessions in this range.";
      rows.push(document.createElement("tr"));
      rows[0].append(none);
    }
    els.byTag.replaceChildren(...rows);
  }

  function chartConfig() {
    return {
      type: "bar",
      data: { labels: [], datasets: [] },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { stacked: true, grid: { display: false }, ticks: { autoSkipPadding: 12, maxRotation: 0 } },
          y: {
            stacked: true,
            beginAtZero: true,
            ticks: { precision: 0 },
            title: { display: true, text: "minutes" },
            grid: { color: "#e8ebf0" },
          },
        },
        plugins: {
          legend: { position: "top", align: "end", labels: { boxWidth: 12, boxHeight: 12, usePointStyle: false } },
          tooltip: {
            callbacks: {
              label: (ctx) => {
                const raw = ctx.dataset.studyMinutes[ctx.dataIndex];
                const count = ctx.dataset.studyCounts[ctx.dataIndex];
                return ` ${ctx.dataset.label}: ${formatMinutes(raw)} (${plural(count, "session")})`;
              },
              footer: (items) => {
                const sum = items.reduce((a, item) => a + item.dataset.studyMinutes[item.dataIndex], 0);
                return `Total: ${formatMinutes(sum)}`;
              },
            },
          },
        },
      },
    };
  }

  function render(series) {
    const { buckets, tags, rows, totals } = shape(series);
    const peak = Math.max(0, ...buckets.map((_, i) => tags.reduce((a, tag) => a + rows.get(tag).minutes[i], 0)));
    const inHours = peak >= 120;
    const label = bucketFormatter(series.duration, buckets);
    if (chart === null) chart = new window.Chart(els.canvas, chartConfig());
    chart.data.labels = buckets.map(label);
    chart.data.datasets = tags.map((tag, i) => ({
      label: tag,
      data: rows.get(tag).minutes.map((m) => (inHours ? m / 60 : m)),
      studyMinutes: rows.get(tag).minutes,
      studyCounts: rows.get(tag).counts,
      backgroundColor: PALETTE[i % PALETTE.length],
      borderRadius: 2,
      maxBarThickness: 48,
    }));
    chart.options.scales.y.title.text = inHours ? "hours" : "minutes";
    chart.options.scales.y.ticks.precision = inHours ? undefined : 0;
    chart.update();

    renderTotals(totals, tags);
    els.subtitle.textContent = series.duration.replace(/^1 /, "");
    els.empty.hidden = totals.sessions > 0;
    window.studytrackChart = { duration: series.duration, tz: series.tz, buckets, labels: chart.data.labels, tags, totals };
    Object.assign(els.figure.dataset, {
      state: "ready",
      bucketCount: String(buckets.length),
      series: tags.join(","),
      duration: series.duration,
    });
  }

  // ---- loading ----------------------------------------------------------------------------------------

  async function refusesZone(response) {
    if (response.status !== 422) return false;
    try {
      const body = await response.clone().json();
      return Array.isArray(body.details) && body.details.some((detail) => detail.field === "tz");
    } catch {
      return false;
    }
  }

  function showError(text) {
    els.error.textContent = text;
    els.error.hidden = !text;
  }

  async function load() {
    let params;
    try {
      params = bucketParams();
    } catch (error) {
      inFlight?.controller.abort(); // an older answer must not replace this message
      inFlight = null;
      showError(error.message);
      els.figure.dataset.state = "error";
      return;
    }
    rememberControls();
    const key = `${params}|${readToken()}`;
    if (inFlight?.key === key) return; // Enter fires both change and submit: ask once
    inFlight?.controller.abort();
    const controller = new AbortController();
    inFlight = { controller, key };
    els.figure.dataset.state = "loading";
    try {
      const response = await apiFetch("api/events/", params, { signal: controller.signal });
      if (zoneGuessed && (await refusesZone(response))) {
        // The browser's zone is one the server does not know: chart in UTC instead of showing an error.
        zoneGuessed = false;
        els.tz.value = "UTC";
        inFlight = null;
        load();
        return;
      }
      if (!response.ok) throw new Error(await errorText(response));
      const series = await response.json();
      if (controller.signal.aborted) return;
      showError("");
      render(series);
    } catch (error) {
      if (controller.signal.aborted) return;
      const text = error instanceof TypeError ? `Could not reach the server: ${error.message}` : error.message;
      showError(text);
      els.figure.dataset.state = "error";
    } finally {
      if (inFlight?.controller === controller) inFlight = null;
    }
  }

  async function downloadCsv() {
    let params;
    try {
      params = bucketParams();
    } catch (error) {
      showError(error.message);
      return;
    }
    params.set("format", "csv");
    try {
      const response = await apiFetch("api/events/", params, { accept: "text/csv" });
      if (!response.ok) throw new Error(await errorText(response));
      const link = document.createElement("a");
      link.href = URL.createObjectURL(await response.blob());
      link.download = "studytrack-buckets.csv";
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    } catch (error) {
      showError(error instanceof TypeError ? `Could not reach the server: ${error.message}` : error.message);
    }
  }

  function start() {
    if (typeof window.Chart !== "function") {
      showError("The chart library did not load (static/vendor/chart.umd.min.js).");
      els.figure.dataset.state = "error";
      return;
    }
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    window.Chart.defaults.color = "#4b5563";
    initControls();
    showTokenState();
    els.controls.addEventListener("submit", (event) => {
      event.preventDefault();
      load();
    });
    els.tz.addEventListener("change", () => {
      zoneGuessed = false; // a zone typed in the page is kept, and an unknown one is shown as an error
    });
    for (const input of [els.duration, els.start, els.end, els.tags, els.tz]) input.addEventListener("change", load);
    els.csv.addEventListener("click", downloadCsv);
    els.tokenForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const token = els.token.value.trim();
      if (!token) return;
      storeToken(token);
      els.tokenPanel.open = false;
      load();
    });
    els.tokenClear.addEventListener("click", () => {
      storeToken("");
      load();
    });
    load();
  }

  start();
})();
