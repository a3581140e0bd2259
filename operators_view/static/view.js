// The operators' page: applies the labels of the chosen language, follows the server's
// snapshots (server-sent events on /events) and redraws the figures in place, no reload.
"use strict";
(() => {
  const strings = JSON.parse(document.getElementById("strings").textContent);
  let lang = document.documentElement.lang;
  let latest = null;
  let source = null;
  const SVG = "http://www.w3.org/2000/svg";

  const t = (key, params) => {
    let text = strings[lang][key] ?? strings.en[key] ?? key;
    for (const [name, value] of Object.entries(params || {})) text = text.replaceAll(`{${name}}`, value);
    return text;
  };
  const category = (prefix, key) => strings[lang][`${prefix}.${key}`] ?? key;
  const locale = () => (lang === "fr" ? "fr-FR" : "en-GB");
  const number = (value, digits = 1) =>
    value === null || value === undefined
      ? "—"
      : new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(value);
  const percent = (value) =>
    value === null || value === undefined
      ? "—"
      : new Intl.NumberFormat(locale(), {
          style: "percent",
          // small shares keep their first digits rather than rounding to 0 %
          ...(Math.abs(value) < 0.001 && value !== 0 ? { maximumSignificantDigits: 2 } : { maximumFractionDigits: 1 }),
        }).format(value);
  const clock = (iso) =>
    new Intl.DateTimeFormat(locale(), { hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(iso));
  const age = (seconds) => {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 120) return t("value.seconds_ago", { n: number(Math.max(seconds, 0), 0) });
    if (seconds < 7200) return t("value.minutes_ago", { n: number(seconds / 60, 0) });
    return t("value.hours_ago", { n: number(seconds / 3600, 0) });
  };
  const bytes = (n) => new Intl.NumberFormat(locale(), { style: "unit", unit: "megabyte", maximumFractionDigits: 1 }).format(n / 1e6);

  function applyLabels() {
    document.documentElement.lang = lang;
    document.title = t("page.title");
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const button of document.querySelectorAll("[data-lang]")) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
    }
  }

  function setLanguage(next) {
    if (!strings[next] || next === lang) return;
    lang = next;
    const url = new URL(window.location.href);
    url.searchParams.set("lang", lang);
    window.history.replaceState(null, "", url);
    applyLabels();
    setConnection(document.getElementById("connection").dataset.state);
    if (latest) render(latest, true);
  }

  function figure(id, value, text) {
    const el = document.getElementById(id);
    el.dataset.value = value === null || value === undefined ? "" : String(value);
    el.textContent = text;
  }

  function sparkline(values) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 100 30");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    const shown = values.length ? values : [0];
    const min = Math.min(...shown), max = Math.max(...shown);
    const label = t("spark.label", { min: number(min), max: number(max), last: number(shown[shown.length - 1]) });
    svg.setAttribute("aria-label", label);
    const title = document.createElementNS(SVG, "title");
    title.textContent = label;
    svg.append(title);
    const span = max - min || 1;
    const x = (i) => (shown.length === 1 ? 100 : (i * 100) / (shown.length - 1));
    const y = (v) => 27 - ((v - min) / span) * 24;
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", shown.map((v, i) => `${x(i).toFixed(2)},${y(v).toFixed(2)}`).join(" "));
    const dot = document.createElementNS(SVG, "circle");
    dot.setAttribute("cx", x(shown.length - 1).toFixed(2));
    dot.setAttribute("cy", y(shown[shown.length - 1]).toFixed(2));
    dot.setAttribute("r", "2");
    svg.append(line, dot);
    return svg;
  }

  function shareBar(share) {
    const wrap = document.createElement("div");
    wrap.className = "share";
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = `${Math.round((share || 0) * 100)}%`;
    bar.append(fill);
    const text = document.createElement("span");
    text.textContent = percent(share);
    wrap.append(bar, text);
    bar.setAttribute("aria-hidden", "true");
    return wrap;
  }

  // cells: [content, className?]; content is text or a node; cell ``header`` names the row.
  function fillTable(id, items, cells, columns, header = 0) {
    const body = document.querySelector(`#${id} tbody`);
    const rows = items.map((item, index) => {
      const tr = document.createElement("tr");
      cells(item, index).forEach(([content, className], i) => {
        const cell = document.createElement(i === header ? "th" : "td");
        if (i === header) cell.scope = "row";
        if (className) cell.className = className;
        if (content instanceof Node) cell.append(content);
        else cell.textContent = content;
        tr.append(cell);
      });
      return tr;
    });
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = columns;
      td.className = "empty";
      td.textContent = t("value.none");
      tr.append(td);
      rows.push(tr);
    }
    body.replaceChildren(...rows);
  }

  function renderTerritory(s) {
    const total = s.territory;
    figure("territory-emissions-hour", total?.emissions_hour_kgco2e, number(total?.emissions_hour_kgco2e));
    figure("territory-emissions-today", total?.emissions_today_kgco2e, number(total?.emissions_today_kgco2e));
    figure("territory-energy-hour", total?.energy_hour_kwh, number(total?.energy_hour_kwh));
    figure("territory-energy-today", total?.energy_today_kwh, number(total?.energy_today_kwh));
    document.getElementById("territory-trend").replaceChildren(sparkline(total?.emissions_hourly_kgco2e || []));
    const path = total?.trajectory || {};
    const tonnes = (kg) => (kg === null || kg === undefined ? null : kg / 1000);
    figure("ytd-emissions", path.emissions_kgco2e, number(tonnes(path.emissions_kgco2e), 2));
    figure("ytd-target", path.target_kgco2e, number(tonnes(path.target_kgco2e), 0));
    figure("ytd-ratio", path.ratio, percent(path.ratio));
    figure("ytd-net-emissions", path.net_emissions_kgco2e, number(tonnes(path.net_emissions_kgco2e), 2));
    figure("ytd-net-target", path.net_target_kgco2e, number(tonnes(path.net_target_kgco2e), 0));
    const verdict = document.getElementById("ytd-verdict");
    verdict.textContent = path.ratio === null || path.ratio === undefined ? "" : t(path.ratio <= 1 ? "fig.on_track" : "fig.off_track");
    verdict.className = `verdict ${path.ratio > 1 ? "bad" : "good"}`;
    const meter = document.getElementById("ytd-meter");
    meter.value = Math.min(path.ratio || 0, 1.5);
    meter.textContent = percent(path.ratio);
  }

  function renderBreakdowns(s) {
    fillTable("communes", s.by_commune, (row, i) => [
      [number(i + 1, 0), "num"],
      [row.label],
      [number(row.emissions_hour_kgco2e), "num"],
      [number(row.emissions_today_kgco2e), "num"],
      [sparkline(row.emissions_hourly_kgco2e)],
      [number(row.energy_hour_kwh), "num"],
      [number(row.energy_today_kwh), "num"],
    ], 7, 1);
    fillTable("sectors", s.by_sector, (row) => [
      [category("sector", row.key)],
      [number(row.emissions_today_kgco2e), "num"],
      [sparkline(row.emissions_hourly_kgco2e)],
      [number(row.energy_today_kwh), "num"],
    ], 4);
    fillTable("mobility", s.mobility, (row) => [
      [category("mode", row.mode)],
      [number(row.passenger_km_today), "num"],
      [shareBar(row.modal_share)],
      [number(row.emissions_today_kgco2e), "num"],
      [sparkline(row.passenger_km_hourly)],
    ], 5);
    fillTable("air", s.air, (row) => {
      const state = row.above_guideline === null ? "none" : row.above_guideline ? "above" : "below";
      const text = { none: "air.not_assessed", above: "air.above", below: "air.below" }[state];
      return [
        [row.station],
        [row.commune],
        [category("quantity", row.quantity)],
        [number(row.hour_mean), "num"],
        [number(row.day_mean), "num"],
        [number(row.who_guideline, 0), "num"],
        [t(text), `status-${state}`],
        [number(row.exceedance_days, 0), "num"],
      ];
    }, 8);
  }

  function renderEvidence(s) {
    fillTable("evidence", s.evidence || [], (row) => {
      const direction = row.sign === null || row.sign === undefined ? "—" : t(row.sign > 0 ? "evidence.raises" : "evidence.lowers");
      const hypothesis = document.createElement("span");
      const questions = row.questions || {};
      hypothesis.textContent = questions[lang] || questions.en || row.hypothesis;
      hypothesis.title = row.hypothesis;
      return [
        [hypothesis],
        [row.place || t("evidence.territory")],
        [t(`evidence.${row.status}`) + (row.detail ? ` (${row.detail})` : ""), `status-${row.status}`],
        [number(row.lag_hours, 0), "num"],
        [direction],
        [row.p_value === null || row.p_value === undefined ? "—" : row.p_value.toExponential(1), "num"],
        [number(row.n, 0), "num"],
        [new Intl.DateTimeFormat(locale(), { dateStyle: "short", timeStyle: "short" }).format(new Date(row.computed_for))],
      ];
    }, 8);
  }

  function deadLetterItem(letter) {
    const li = document.createElement("li");
    li.dataset.offset = letter.offset;
    const meta = document.createElement("span");
    meta.className = "meta";
    const parts = [letter.failed_at ? clock(letter.failed_at) : "", category("family", letter.family), letter.stage];
    if (letter.producer) parts.push(t("dead_letters.producer", { producer: letter.producer }));
    meta.textContent = parts.filter(Boolean).join(" · ");
    const reason = document.createElement("span");
    reason.className = "reason";
    reason.textContent = letter.reason;
    li.append(meta, reason);
    return li;
  }

  // Newest first. Only new dead letters are added to the list (a polite live region), so a
  // screen reader announces each once, not the whole list at every refresh.
  function renderDeadLetters(letters, force) {
    const list = document.getElementById("dead-letters");
    if (!letters.length) {
      const li = document.createElement("li");
      li.textContent = t("dead_letters.empty");
      list.replaceChildren(li);
      return;
    }
    const shown = new Set([...list.querySelectorAll("li[data-offset]")].map((li) => li.dataset.offset));
    if (force || !shown.size) {
      list.replaceChildren(...letters.map(deadLetterItem));
      return;
    }
    const fresh = letters.filter((letter) => !shown.has(String(letter.offset)));
    list.prepend(...fresh.map(deadLetterItem));
    const keep = new Set(letters.map((letter) => String(letter.offset)));
    for (const li of list.querySelectorAll("li")) if (!keep.has(li.dataset.offset)) li.remove();
  }

  function renderHealth(h, force) {
    const v = h.validation || {};
    figure("received-per-second", v.received_per_second, number(v.received_per_second));
    figure("dead-letters-per-second", v.dead_letters_per_second, number(v.dead_letters_per_second, 2));
    figure("dead-letter-share", v.dead_letter_share, percent(v.dead_letter_share));
    figure("dead-letter-share-since-start", v.dead_letter_share_since_start, percent(v.dead_letter_share_since_start));
    const reasons = Object.entries(v.reasons || {}).map(([type, count]) => {
      const li = document.createElement("li");
      li.textContent = `${type}: ${number(count, 0)}`;
      return li;
    });
    document.getElementById("reasons").replaceChildren(...reasons);
    renderDeadLetters(h.dead_letters || [], force);
    fillTable("producers", h.producers, (p) => [
      [category("producer", p.producer)], // a registry producer's id, or a bucket's label
      [number(p.readings_per_second), "num"],
      [number(p.accepted, 0), "num"],
      [number(p.duplicates, 0), "num"],
      [number(p.dead_lettered, 0), "num"],
      [age(p.last_event_age_seconds), "num"],
      [percent(p.completeness), "num"],
    ], 7);
    fillTable("lag", h.lag, (l) => [
      [`${l.group} (${t(`role.${l.role}`)})`],
      [l.topic],
      [number(l.lag, 0), "num"],
    ], 3);
    const sink = h.sink;
    const put = (id, text, ok) => {
      const el = document.getElementById(id);
      el.className = ok === undefined ? "" : ok ? "ok" : "ko";
      el.textContent = text;
    };
    const state = (id, ok, yes, no) => (sink ? put(id, t(ok ? yes : no), Boolean(ok)) : put(id, "—"));
    state("sink-state", sink?.running, "state.running", "state.stopped");
    state("sink-influx", sink?.influx_ok, "state.reachable", "state.away");
    state("sink-kafka", sink?.kafka_ready, "state.reachable", "state.away");
    figure("sink-written", sink?.points_written_per_second, number(sink?.points_written_per_second, 0));
    put("sink-disk", sink ? `${t("fig.points", { n: number(sink.buffered_disk_points, 0) })}, ${bytes(sink.buffered_disk_bytes)}` : "—");
    put("sink-error", sink?.last_error || "—");
    const memory = document.getElementById("sink-memory");
    memory.value = sink && sink.memory_limit_bytes ? sink.buffered_memory_bytes / sink.memory_limit_bytes : 0;
    document.getElementById("sink-memory-text").textContent = sink
      ? `${t("fig.points", { n: number(sink.buffered_memory_points, 0) })}, ${bytes(sink.buffered_memory_bytes)} / ${bytes(sink.memory_limit_bytes)}`
      : "";
    memory.textContent = document.getElementById("sink-memory-text").textContent;
    fillTable("bridges", h.bridges, (b) => [
      [b.client_id],
      [t(b.ready ? "value.yes" : "value.no"), b.ready ? "ok" : "ko"],
      [number(b.received, 0), "num"],
      [number(b.in_flight, 0), "num"],
    ], 4);
  }

  function renderSources(sources) {
    const el = document.getElementById("sources");
    const names = Object.keys(sources || {});
    el.hidden = !names.length;
    el.textContent = names.length ? `${t("sources.unavailable")} ${names.map((n) => t(`source.${n}`)).join(", ")}` : "";
    el.title = names.map((n) => `${n}: ${sources[n]}`).join("\n");
  }

  function render(s, force = false) {
    renderTerritory(s);
    renderBreakdowns(s);
    renderEvidence(s);
    renderHealth(s.health, force);
    renderSources(s.sources);
    const updated = document.getElementById("updated");
    updated.textContent = t("conn.updated", { time: clock(s.generated_at) });
    updated.dataset.generatedAt = s.generated_at;
  }

  function setConnection(state) {
    const el = document.getElementById("connection");
    el.dataset.state = state;
    el.textContent = t(`conn.${state}`);
  }

  function connect() {
    if (source) return;
    setConnection("connecting");
    source = new EventSource("/events");
    source.addEventListener("open", () => setConnection("live"));
    source.addEventListener("error", () => setConnection(source && source.readyState === EventSource.CLOSED ? "lost" : "connecting"));
    source.addEventListener("snapshot", (event) => {
      latest = JSON.parse(event.data);
      setConnection("live");
      render(latest);
    });
  }

  // Eco-design: a hidden tab stops listening, and the server stops polling when nobody listens.
  document.addEventListener("visibilitychange", () => {
    if (document.hidden && source) {
      source.close();
      source = null;
      setConnection("paused");
    } else if (!document.hidden) {
      connect();
    }
  });

  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => setLanguage(button.dataset.lang));
  }
  applyLabels();
  connect();
})();
