// Switchboard status page: polls /admin/api/status with the admin token and renders it.
// The token comes from the URL fragment (#token=…, never sent to a server) or the form, and is
// kept in this tab's sessionStorage only. Everything is rendered with textContent: no HTML
// from the router reaches the page as markup.
"use strict";

const REFRESH_MS = 2000;
// The edge answers within its own bounds (each router call 10 s, its retries ~5 s): an answer
// still owed after this will not come (a frozen host, a proxy holding the connection). Given up
// on, said, and polled again, rather than the top bar staying green on the last answer.
const ANSWER_MS = 20000;
const TOKEN_KEY = "switchboard-admin-token";
let timer = null;
// Which poller is current: pressing Open starts a new one, and an older one's answer (its token
// perhaps the wrong one) is dropped, its next poll never scheduled: one poll every REFRESH_MS.
let poller = 0;

// The fragment's token, if any, kept and taken out of the URL (and so of the tab's history):
// true when there was one.
function takeTokenFromFragment() {
  const match = /(?:^|&)token=([^&]+)/.exec(location.hash.slice(1));
  if (match) {
    // Out of the URL first: whatever fails below (storage refused) must not leave it there.
    history.replaceState(null, "", location.pathname + location.search);
    let token = match[1];
    try {
      token = decodeURIComponent(token);
    } catch {
      // A lone "%" (a token pasted as is): taken as typed, not a dead page.
    }
    try {
      sessionStorage.setItem(TOKEN_KEY, token);
    } catch {
      // Storage refused (a policy, a full quota): the form asks for the token instead.
    }
  }
  return Boolean(match);
}

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function seconds(value) {
  if (value === null || value === undefined) return "—";
  if (value >= 86400) return `${(value / 86400).toFixed(1)} d`;
  if (value >= 3600) return `${(value / 3600).toFixed(1)} h`;
  // Whole seconds down, as the minutes: 3599.6 s is "59 m 59 s", never "59 m 60 s".
  if (value >= 60) return `${Math.floor(value / 60)} m ${Math.floor(value % 60)} s`;
  return `${value.toFixed(1)} s`;
}

// A deadline a year or more away is a key disabled by hand (keys/_pool.py: ten years out):
// it lasts until someone enables it, as `switchboard admin keys` says, not "3650.0 d".
const OPEN_ENDED_S = 365 * 86400;

function ends(value) {
  return value !== null && value >= OPEN_ENDED_S ? "until enabled" : seconds(value);
}

function fill(tableId, rows, render, emptyText) {
  const body = document.querySelector(`#${tableId} tbody`);
  const columns = document.querySelectorAll(`#${tableId} thead th`).length;
  body.replaceChildren();
  if (!rows.length) {
    body.append(el("tr", {}, [el("td", { class: "empty", colspan: columns, text: emptyText })]));
    return;
  }
  for (const row of rows) body.append(render(row));
}

function td(text, cls) {
  return el("td", cls ? { class: cls, text } : { text });
}

function badge(text, kind) {
  return el("td", {}, [el("span", { class: `badge ${kind}`, text })]);
}

function successCell(mean, total) {
  if (!total) return td("no traffic yet", "empty");
  const pct = Math.round(mean * 100);
  const level = pct < 50 ? "low" : pct < 90 ? "mid" : "";
  const share = el("span");
  share.style.width = `${pct}%`; // CSSOM: the page's CSP refuses a style attribute (style-src)
  const bar = el("span", { class: `bar ${level}` }, [share]);
  return el("td", {}, [bar, `${pct}%`]);
}

// "used / limit"; what no limit counts is a dash, a limit with nothing counted yet "0 / limit".
function ofLimit(used, limit) {
  const shown = used === null ? "—" : String(Math.round(used * 100) / 100);
  return limit === null ? shown : `${shown} / ${limit}`;
}

function bytes(n) {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

const BUDGET_WARN = 0.9; // as deploy/alerts.yml's budget alert

function level(share) {
  return share >= 1 ? "bad" : share >= BUDGET_WARN ? "warn" : "";
}

function usedCell(used, limit, text, resetsIn) {
  const share = limit ? used / limit : 0;
  const cls = level(share);
  return el("td", cls ? { class: cls } : {}, [
    text, el("div", { class: "muted", text: `renews in ${seconds(resetsIn)}` }),
  ]);
}

// A period's token budget and money budget share its cell, coloured by the fuller one.
function budgetCell(client, period) {
  const tokens = client.budgets.find((b) => b.period === period);
  const usd = client.spend_budgets.find((b) => b.period === period);
  if (!tokens && !usd) return td("—");
  const lines = [];
  let share = 0;
  if (tokens) {
    lines.push(`${tokens.used} / ${tokens.limit} tokens`);
    share = Math.max(share, tokens.used / tokens.limit);
  }
  if (usd) {
    lines.push(`$${usd.used_usd.toFixed(2)} / $${usd.limit_usd.toFixed(2)}`);
    share = Math.max(share, usd.used_usd / usd.limit_usd);
  }
  const cls = level(share);
  const resetsIn = (tokens || usd).resets_in_s;
  return el("td", cls ? { class: cls } : {}, [
    ...lines.map((text) => el("div", { text })),
    el("div", { class: "muted", text: `renews in ${seconds(resetsIn)}` }),
  ]);
}

function bytesCell(quota) {
  if (!quota) return td("off");
  return usedCell(quota.used, quota.quota, `${bytes(quota.used)} / ${bytes(quota.quota)}`, quota.resets_in_s);
}

// Its keys by fingerprint (an issued one with its label), each with when it expires.
function keysCell(keys) {
  if (!keys.length) return td("—");
  return el("td", {}, keys.map((k) => el("div", {}, [
    el("code", { text: k.fingerprint }), k.label ? ` ${k.label}` : "",
    k.expires_in_s !== null ? el("span", { class: "muted", text: k.expires_in_s > 0 ? ` expires in ${seconds(k.expires_in_s)}` : " expired" }) : "",
  ])));
}

function renderClient(c) {
  return el("tr", {}, [
    el("td", {}, [el("code", { text: c.name }), c.anonymous ? " (open mode, no key)" : ""]),
    td(c.scopes.join(", ")), td(c.models.join(", ")),
    td(ofLimit(c.minute_requests, c.rpm), "num"), td(ofLimit(c.minute_tokens, c.tpm), "num"),
    td(ofLimit(c.open_streams, c.max_concurrent_streams), "num"),
    budgetCell(c, "day"), budgetCell(c, "month"),
    bytesCell(c.stored_responses), bytesCell(c.cached_answers), bytesCell(c.conversations),
    keysCell(c.keys),
  ]);
}

function renderCards(data) {
  const states = { active: 0, cooling: 0, disabled: 0 };
  for (const counts of Object.values(data.keys_by_state)) {
    for (const [state, n] of Object.entries(counts)) states[state] = (states[state] || 0) + n;
  }
  const cooling = data.deployments.filter((d) => d.cooldown_left_s !== null).length;
  const sessions = data.sessions.reduce((sum, s) => sum + s.active_sessions, 0);
  const cards = [
    ["Deployments", data.deployments.length, ""],
    ["Deployments cooling", cooling, cooling ? "warn" : ""],
    ["Keys active", states.active, ""],
    ["Keys cooling", states.cooling, states.cooling ? "warn" : ""],
    ["Keys disabled", states.disabled, states.disabled ? "bad" : ""],
    ["Active cooldowns", data.cooldowns.length, data.cooldowns.length ? "warn" : ""],
    ["Active sessions", sessions, ""],
  ];
  document.getElementById("cards").replaceChildren(
    ...cards.map(([label, value, level]) =>
      el("div", { class: `card ${level}` }, [
        el("div", { class: "value", text: String(value) }),
        el("div", { class: "label", text: label }),
      ]),
    ),
  );
}

const CERTIFICATE_WARN_S = 14 * 86400;

// The replica that answered and what it runs; what needs an operator's eye is coloured.
function renderServer(server) {
  const items = [
    ["Replica", server.replica, ""],
    ["Listens on", server.address, ""],
    ["Version", server.version, ""],
    ["Up", seconds(server.up_s), ""],
    ["Config", server.config_digest ? `${server.config_digest} (${seconds(server.config_age_s)} ago)` : "no file", ""],
    ["State", server.state_degraded ? `${server.state_backend}: unreachable, deciding alone` : server.state_backend,
      server.state_degraded ? "bad" : ""],
  ];
  if (server.reload_error) items.push(["Last reload failed", server.reload_error, "bad"]);
  if (server.certificate_left_s !== null) {
    const left = server.certificate_left_s;
    items.push(["Certificate", left <= 0 ? "expired" : `expires in ${seconds(left)}`,
      left < CERTIFICATE_WARN_S ? (left <= 0 ? "bad" : "warn") : ""]);
  }
  if (server.auth_open) items.push(["Auth", "open: no client key needed", "warn"]);
  document.getElementById("server").replaceChildren(
    ...items.map(([label, value, level]) => el("div", { class: `item ${level}`, "data-item": label }, [
      el("span", { class: "label", text: label }), el("span", { class: "value", text: value }),
    ])),
  );
}

// Batches (every replica's), then this replica's background responses and realtime sessions.
function jobRows(jobs) {
  const batches = jobs.batches.map((b) => {
    const counts = b.request_counts;
    return el("tr", {}, [
      td("batch"), el("td", {}, [el("code", { text: b.id })]), td(b.client || "(open mode)"),
      td(b.endpoint), badge(b.status, "group"),
      td(`${counts.completed + counts.failed} / ${counts.total} (${counts.failed} failed)`),
      td(seconds(b.age_s), "num"), td(b.replica || "nobody: to be taken over"),
    ]);
  });
  const background = jobs.background.map((r) => el("tr", {}, [
    td("background response"), el("td", {}, [el("code", { text: r.id })]),
    td(r.client || "(open mode)"), td(r.model), badge(r.status, "group"), td("—"),
    td(seconds(r.age_s), "num"), td(jobs.replica),
  ]));
  const realtime = jobs.realtime.map((s) => el("tr", {}, [
    td("realtime session"), td("—"), td(s.client || "(open mode)"), td(s.model),
    badge("open", "group"), td(`${s.events_from_caller} in / ${s.events_to_caller} out`),
    td(seconds(s.age_s), "num"),
    el("td", {}, [`${jobs.replica}: ${s.deployment} `, el("code", { text: s.key_fingerprint })]),
  ]));
  return [...batches, ...background, ...realtime];
}

function render(data) {
  renderServer(data.server);
  renderCards(data);
  fill("cooldowns", data.cooldowns, (c) => el("tr", { class: c.scope === "key" ? "disabled" : "cooling" }, [
    td(c.scope), el("td", {}, [el("code", { text: c.name })]), td(c.provider), td(ends(c.left_s), "num"),
  ]), "No cooldowns: every deployment and key is in rotation.");
  fill("deployments", data.deployments, (d) => el("tr", { class: d.cooldown_left_s !== null ? "cooling" : "" }, [
    el("td", {}, [el("code", { text: d.deployment }), ...(d.stream_options_refused
      ? [" ", el("span", { class: "badge cooling", text: "refuses stream_options",
        title: "its streams count the router's estimate" })]
      : [])]),
    td(d.provider),
    successCell(d.success_mean, d.successes + d.failures),
    td(String(d.successes), "num"), td(String(d.failures), "num"),
    td(d.latency_ewma_ms === null ? "—" : `${d.latency_ewma_ms} ms`, "num"),
    td(`${d.alpha} / ${d.beta}`, "num"),
    d.cooldown_left_s !== null ? badge(`cooling ${seconds(d.cooldown_left_s)}`, "cooling") : td("—"),
  ]), "No deployments.");
  fill("groups", data.groups, (g) => el("tr", {}, [
    el("td", {}, [el("code", { text: g.name })]), badge(g.kind, g.kind), td(g.strategy),
    td(g.kind === "pool" ? g.groups.join(", ") : g.deployments.join(", ")),
  ]), "No model groups.");
  fill("sessions", data.sessions, (s) => el("tr", {}, [
    td(s.provider), td(s.thread_protection), td(String(s.active_sessions), "num"),
    td(String(s.active_requests), "num"),
    td(s.banned_sessions.join(", ") || "–"), td(s.skipped.join(", ") || "–"),
  ]), "No providers.");
  fill("clients", data.clients, renderClient, "No clients.");
  fill("jobs", data.jobs ? jobRows(data.jobs) : [], (row) => row, !data.jobs
    ? "This router does not list its jobs (an older version)."
    : data.jobs.batches_unknown ? "No background responses or realtime sessions running there."
      : "No batches, background responses or realtime sessions running.");
  if (data.jobs && data.jobs.batches_unknown) { // no batches shown: not "none running"
    const columns = document.querySelectorAll("#jobs thead th").length;
    document.querySelector("#jobs tbody").prepend(el("tr", {}, [el("td", {
      class: "empty", colspan: columns,
      text: `Batches unknown: replica ${data.jobs.replica} cannot reach the state store.`,
    })]));
  }
  if (data.jobs && data.jobs.truncated) { // the newest of each only: say so, and where the rest are
    const columns = document.querySelectorAll("#jobs thead th").length;
    document.querySelector("#jobs tbody").append(el("tr", {}, [el("td", {
      class: "empty", colspan: columns,
      text: "More left out (the newest 50 of each shown): /admin/api/jobs?limit=N or "
        + "`switchboard admin jobs --limit N` lists up to 500.",
    })]));
  }
  fill("keys", data.keys, (k) => el("tr", { class: k.state === "active" ? "" : k.state }, [
    td(k.provider), el("td", {}, [el("code", { text: k.fingerprint })]), badge(k.state, k.state),
    td(k.max_in_flight ? `${k.in_flight} / ${k.max_in_flight}` : String(k.in_flight), "num"),
    td(k.last_outcome || "—"), td(k.left_s === null ? "—" : ends(k.left_s)), td(whyDisabled(k)),
    td(Object.entries(k.cooling_models).map(([m, left]) => `${m} (${seconds(left)})`).join(", ") || "—"),
  ]), "No keys.");
}

// "manual: rotating (ops-bot)": the reason, the operator's note and who gave it.
function whyDisabled(k) {
  if (!k.disabled_reason) return "—";
  const note = k.disabled_note ? `: ${k.disabled_note}` : "";
  return `${k.disabled_reason}${note}${k.disabled_by ? ` (${k.disabled_by})` : ""}`;
}

function setLive(ok, text) {
  const live = document.getElementById("live");
  live.className = `live ${ok ? "ok" : "bad"}`;
  document.getElementById("live-text").textContent = text;
}

function loginError(message) {
  const error = document.getElementById("login-error");
  error.hidden = !message;
  error.textContent = message || "";
}

function showLogin(message) {
  clearTimeout(timer);
  document.getElementById("status").hidden = true;
  document.getElementById("login").hidden = false;
  loginError(message);
  setLive(false, "signed out");
}

// A poll failed: said at the top, and on the form while it shows (not its last answer's "not
// accepted": the token just typed may be the right one).
function failing(said) {
  setLive(false, said);
  if (!document.getElementById("login").hidden) loginError(said);
}

async function refresh(mine = poller) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return showLogin();
  const late = new AbortController();
  const giveUp = setTimeout(() => late.abort(new Error(`none within ${ANSWER_MS / 1000} s`)), ANSWER_MS);
  try {
    const response = await fetch("/admin/api/status", {
      headers: { authorization: `Bearer ${token}` },
      cache: "no-store",
      signal: late.signal,
    });
    const data = response.status === 401 ? null : await response.json();
    if (mine !== poller) return; // a newer poller took over
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      return showLogin("That token was not accepted.");
    }
    if (!response.ok) {
      // The edge says what failed (the router down, or refusing edge.admin_router_key): its
      // words, not a guess that the router is unreachable.
      failing(data.error ? data.error.message : `${response.status} ${response.statusText}`);
    } else {
      document.getElementById("login").hidden = true;
      document.getElementById("status").hidden = false;
      render(data);
      setLive(true, `live · updated ${new Date(data.generated_at * 1000).toLocaleTimeString()}`);
    }
  } catch (error) {
    if (mine !== poller) return;
    failing(`no answer from the edge: ${error.message}`);
  } finally {
    clearTimeout(giveUp);
  }
  timer = setTimeout(() => refresh(mine), REFRESH_MS);
}

// A new token (typed, or pasted into the URL of the page already open): a new poller with it.
function restart() {
  clearTimeout(timer);
  poller += 1;
  refresh();
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value);
  restart();
});

// `/admin#token=…` on a tab already there changes the fragment only: no load reads it.
window.addEventListener("hashchange", () => {
  if (takeTokenFromFragment()) restart();
});

takeTokenFromFragment();
refresh();
