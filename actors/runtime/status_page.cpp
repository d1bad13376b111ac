// The status page: one HTML document with its CSS and script inline, so it
// works on a node without any internet access. The script renders what the
// JSON API answers, with the admin token from the URL fragment
// (`/status#token=...`, which browsers never send) or from the token field,
// kept in sessionStorage; every value goes in through textContent.

#include "actors/runtime/status_page.hpp"

namespace ferry {

namespace {

constexpr std::string_view page = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Ferry status</title>
<style>
  :root { --fg: #1d2430; --muted: #667085; --line: #e3e6eb; --bg: #f6f7f9;
          --ok: #1f7a3d; --warn: #a15c00; --bad: #b42318; --card: #fff; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
         color: var(--fg); background: var(--bg); }
  header { display: flex; flex-wrap: wrap; align-items: center; gap: 12px;
           padding: 12px 20px; background: var(--card); border-bottom: 1px solid var(--line); }
  h1 { font-size: 18px; margin: 0 8px 0 0; }
  h2 { font-size: 15px; margin: 0 0 8px; }
  #updated { color: var(--muted); }
  form { margin-left: auto; display: flex; gap: 6px; align-items: center; }
  input { font: inherit; padding: 3px 6px; width: 16em; }
  button { font: inherit; padding: 3px 10px; }
  main { padding: 16px 20px; display: grid; gap: 16px; }
  section { background: var(--card); border: 1px solid var(--line); border-radius: 6px;
            padding: 12px 14px; overflow-x: auto; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid var(--line);
           vertical-align: top; white-space: nowrap; }
  td.wrap { white-space: normal; min-width: 14em; }
  th { color: var(--muted); font-weight: 600; white-space: normal; }
  .num { text-align: right; }
  .muted, .note { color: var(--muted); }
  .badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px;
           font-weight: 600; background: #eef0f3; }
  .ok { color: var(--ok); background: #e5f4ea; }
  .warn { color: var(--warn); background: #fdf1de; }
  .bad { color: var(--bad); background: #fde8e6; }
  #problem { margin: 16px 20px 0; padding: 10px 14px; border-radius: 6px;
             background: #fde8e6; color: var(--bad); font-weight: 600; }
  ul.reasons { margin: 6px 0 0; padding-left: 20px; }
  .indent { display: inline-block; }
</style>
</head>
<body data-state="loading">
<header>
  <h1>Ferry status</h1>
  <span id="node-health" class="badge">loading</span>
  <span id="updated">loading…</span>
  <form id="token-form">
    <label for="token">Admin token</label>
    <input id="token" type="password" autocomplete="off" placeholder="from [admin] token">
    <button type="submit">Use</button>
    <button type="button" id="forget">Forget</button>
  </form>
</header>
<div id="problem" role="alert" hidden></div>
<main>
  <section id="health"><h2>Health</h2><div class="content"></div></section>
  <section id="sync-servers"><h2>Sync servers</h2><div class="content"></div></section>
  <section id="grasp-repos"><h2>GRASP repositories</h2><div class="content"></div></section>
  <section id="hosted-relays"><h2>Hosted relays</h2><div class="content"></div></section>
  <section id="cluster"><h2>Cluster members</h2><div class="content"></div></section>
  <section id="federation"><h2>Federation peers</h2><div class="content"></div></section>
  <section id="actors"><h2>Actor tree</h2><div class="content"></div></section>
</main>
<script>
'use strict'
// Read-only: the page only GETs the admin API of the node that served it.
const REFRESH_MS = 5000
const TOKEN_KEY = 'ferry.admin.token'

// -- the token --------------------------------------------------------------

function keepTokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1))
  const token = params.get('token')
  if (token === null) return
  sessionStorage.setItem(TOKEN_KEY, token)
  // Out of the address bar and the history once kept.
  history.replaceState(null, '', location.pathname)
}

function currentToken() {
  return sessionStorage.getItem(TOKEN_KEY) || ''
}

// -- the API ----------------------------------------------------------------

/** One GET: { status, body, error }; status 0 when the node did not answer. */
async function get(path) {
  const headers = {}
  const token = currentToken()
  if (token) headers.Authorization = 'Bearer ' + token
  let res
  try {
    res = await fetch(path, { headers, cache: 'no-store', signal: AbortSignal.timeout(8000) })
  } catch (err) {
    return { status: 0, body: null, error: err.name === 'TimeoutError' ? 'no answer within 8 s' : err.message }
  }
  let body = null
  try {
    body = await res.json()
  } catch (err) {}
  const message = body && body.error && body.error.message
  return { status: res.status, body, error: res.ok ? '' : message || 'HTTP ' + res.status }
}

// -- rendering helpers ------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === 'class') node.className = value
    else if (key === 'title') node.title = value
    else node.setAttribute(key, value)
  }
  for (const child of children) {
    if (child === null || child === undefined) continue
    node.append(child instanceof Node ? child : String(child))
  }
  return node
}

function badge(text, tone) {
  return el('span', { class: 'badge ' + (tone || '') }, text)
}

const GOOD = ['ok', 'running', 'live', 'active', 'alive', 'yes']
const BAD = ['degraded', 'failed', 'dead', 'stopped', 'no', 'revoked', 'refused', 'down']
function tone(value) {
  if (GOOD.includes(value)) return 'ok'
  if (BAD.includes(value)) return 'bad'
  return 'warn'
}

/** `columns`: [{ title, field, num, wrap }]; `rows`: { key, attrs, cells: { field: value } }. */
function table(columns, rows) {
  const head = el('tr', {}, ...columns.map((c) => el('th', { class: c.num ? 'num' : '' }, c.title)))
  const body = rows.map((row) =>
    el('tr', row.attrs, ...columns.map((c) =>
      el('td', { 'data-field': c.field, class: (c.num ? 'num ' : '') + (c.wrap ? 'wrap' : '') }, row.cells[c.field]))))
  return el('table', {}, el('thead', {}, head), el('tbody', {}, ...body))
}

function fill(sectionId, ...children) {
  const content = document.querySelector('#' + sectionId + ' .content')
  content.replaceChildren(...children.filter((c) => c !== null && c !== undefined))
}

function note(text) {
  return el('p', { class: 'note' }, text)
}

function unavailable(sectionId, answer) {
  fill(sectionId, el('p', { class: 'note', 'data-error': String(answer.status) },
    answer.status ? answer.status + ': ' + answer.error : 'no answer: ' + answer.error))
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return '-'
  const s = Math.max(0, Math.round(seconds))
  if (s < 120) return s + ' s'
  if (s < 7200) return Math.round(s / 60) + ' min'
  if (s < 172800) return Math.round(s / 3600) + ' h'
  return Math.round(s / 86400) + ' d'
}

/** A Unix time as "3 min ago", with the ISO time as its tooltip. */
function ago(unixSeconds) {
  if (!unixSeconds) return el('span', { class: 'muted' }, 'never')
  const iso = new Date(unixSeconds * 1000).toISOString()
  return el('span', { title: iso }, duration(Date.now() / 1000 - unixSeconds) + ' ago')
}

function yesNo(value) {
  return badge(value ? 'yes' : 'no', value ? 'ok' : 'bad')
}

// -- sections ---------------------------------------------------------------

function renderHealth(health, syncHealth) {
  const top = document.getElementById('node-health')
  if (!health.body || !health.body.status) {
    top.textContent = 'unknown'
    top.className = 'badge warn'
    unavailable('health', health)
    return
  }
  const status = health.body.status
  top.textContent = status
  top.className = 'badge ' + tone(status)
  const reasons = (health.body.reasons || []).map((r) => el('li', {}, r))
  fill('health',
    el('div', {}, 'Node: ', badge(status, tone(status))),
    reasons.length ? el('ul', { class: 'reasons' }, ...reasons) : null,
    syncHealth.body && syncHealth.body.status
      ? el('div', {}, 'Sync: ', badge(syncHealth.body.status, tone(syncHealth.body.status)),
          ' ' + syncHealth.body.servers + ' enabled server(s), ' + (syncHealth.body.degraded || []).length + ' degraded')
      : null)
}

function renderActors(actors) {
  if (actors.status !== 200) return unavailable('actors', actors)
  const list = actors.body
  const children = new Map()
  for (const a of list) {
    if (!children.has(a.parent)) children.set(a.parent, [])
    children.get(a.parent).push(a)
  }
  const ordered = []
  const names = new Set(list.map((a) => a.name))
  const walk = (parent, depth) => {
    for (const a of children.get(parent) || []) {
      ordered.push([a, depth])
      walk(a.name, depth + 1)
    }
  }
  // Roots: actors whose parent is not in the list (the node's supervisor).
  for (const a of list) if (!names.has(a.parent)) { ordered.push([a, 0]); walk(a.name, 1) }
  const running = list.filter((a) => a.state === 'running').length
  const rows = ordered.map(([a, depth]) => ({
    attrs: { 'data-actor': a.name },
    cells: {
      name: el('span', { class: 'indent', style: 'padding-left:' + depth * 16 + 'px' }, a.name),
      kind: a.kind,
      state: badge(a.state, tone(a.state)),
      restarts: String(a.restarts),
      mailbox: String(a.mailbox),
      uptime: duration(a.uptime),
      last_error: a.last_error ? el('span', { title: a.last_error_at ? new Date(a.last_error_at * 1000).toISOString() : '' }, a.last_error) : '',
    },
  }))
  fill('actors',
    el('p', { class: 'note', 'data-summary': 'actors' }, list.length + ' actors, ' + running + ' running'),
    table([
      { title: 'Actor', field: 'name' }, { title: 'Kind', field: 'kind' }, { title: 'State', field: 'state' },
      { title: 'Restarts', field: 'restarts', num: true }, { title: 'Mailbox', field: 'mailbox', num: true },
      { title: 'Uptime', field: 'uptime' }, { title: 'Last error', field: 'last_error', wrap: true },
    ], rows))
}

function renderSyncServers(servers, syncHealth, actors) {
  if (servers.status !== 200) return unavailable('sync-servers', servers)
  if (servers.body.length === 0) return fill('sync-servers', note('No sync servers configured.'))
  // Per-server health and lag as the health tracker reports them (the
  // same figures as ferry_sync_lag_seconds).
  const tracker = actors.status === 200 ? actors.body.find((a) => a.name === 'health-tracker') : null
  const tracked = (tracker && tracker.status && tracker.status.servers) || {}
  const degraded = new Map(((syncHealth.body && syncHealth.body.degraded) || []).map((d) => [d.id, d.reasons]))
  const rows = servers.body.map((s) => {
    const rt = s.runtime || {}
    const t = tracked[s.id]
    const health = !s.enabled ? 'disabled' : t ? t.status : s.running ? 'unknown' : 'stopped'
    const reasons = degraded.get(s.id)
    return {
      attrs: { 'data-server': s.id },
      cells: {
        id: s.id,
        url: s.url,
        direction: s.direction + ' / ' + s.mode,
        health: el('span', { title: reasons ? reasons.join('\n') : '' }, badge(health, tone(health))),
        connected: yesNo(rt.connected === true),
        lag: t && s.enabled ? duration(t.lag_seconds) + (t.lag_seconds === 0 ? ' (caught up)' : '') : '-',
        last_connected: ago(rt.last_connected),
        events: (rt.received || 0) + ' / ' + (rt.accepted || 0),
        last_error: reasons ? reasons.join('; ') : rt.last_error || s.last_exit || '',
      },
    }
  })
  fill('sync-servers', table([
    { title: 'Id', field: 'id' }, { title: 'URL', field: 'url' }, { title: 'Direction / mode', field: 'direction' },
    { title: 'Health', field: 'health' }, { title: 'Connected', field: 'connected' }, { title: 'Lag', field: 'lag' },
    { title: 'Last connected', field: 'last_connected' }, { title: 'Received / accepted', field: 'events', num: true },
    { title: 'Problem', field: 'last_error', wrap: true },
  ], rows))
}

function renderRepos(repos) {
  // 404: GRASP sync is off (or restarting); the message says which.
  if (repos.status === 404) return fill('grasp-repos', el('p', { class: 'note', 'data-empty': 'grasp' }, repos.error))
  if (repos.status !== 200) return unavailable('grasp-repos', repos)
  if (repos.body.length === 0) return fill('grasp-repos', note('No repositories announced yet.'))
  const rows = repos.body.map((r) => ({
    attrs: { 'data-repo': r.address },
    cells: {
      address: r.address,
      confirmed: r.confirmed_on.length + ' of ' + r.relays.length,
      pending: String(r.pending_on.length),
      roots: String(r.roots),
      announced: ago(r.announcement_created_at),
      relays: r.relays.join(' '),
    },
  }))
  fill('grasp-repos', table([
    { title: 'Repository', field: 'address' }, { title: 'Confirmed on', field: 'confirmed' },
    { title: 'Pending', field: 'pending', num: true }, { title: 'Roots', field: 'roots', num: true },
    { title: 'Announced', field: 'announced' }, { title: 'Relays', field: 'relays', wrap: true },
  ], rows))
}

function renderRelays(relays) {
  if (relays.status !== 200) return unavailable('hosted-relays', relays)
  if (relays.body.length === 0) return fill('hosted-relays', note('No hosted relays.'))
  const rows = relays.body.map((r) => ({
    attrs: { 'data-relay': r.id },
    cells: {
      id: r.id,
      name: (r.info && r.info.name) || '',
      subdomain: r.subdomain,
      status: badge(r.status, tone(r.status)),
      synced: yesNo(r.synced === true),
      attempts: String(r.failed_attempts || 0) + (r.given_up ? ' (given up)' : ''),
      updated: ago(r.updated_at),
      error: r.sync_error || '',
    },
  }))
  fill('hosted-relays', table([
    { title: 'Id', field: 'id' }, { title: 'Name', field: 'name' }, { title: 'Subdomain', field: 'subdomain' },
    { title: 'Status', field: 'status' }, { title: 'Pushed', field: 'synced' },
    { title: 'Failed attempts', field: 'attempts', num: true }, { title: 'Updated', field: 'updated' },
    { title: 'Push error', field: 'error', wrap: true },
  ], rows))
}

function renderCluster(cluster) {
  if (cluster.status === 404) return fill('cluster', el('p', { class: 'note', 'data-empty': 'cluster', title: cluster.error }, 'not in a cluster'))
  if (cluster.status !== 200) return unavailable('cluster', cluster)
  const rows = (cluster.body.members || []).map((m) => {
    const rep = m.replication
    return {
      attrs: { 'data-member': m.name },
      cells: {
        name: m.name + (m.self ? ' (this node)' : ''),
        state: badge(m.state, tone(m.state)),
        relay_url: m.relay_url,
        heartbeat: m.self ? '-' : duration((m.heartbeat_age_ms || 0) / 1000) + ' ago',
        replication: m.self ? '-' : rep ? (rep.connected ? 'connected' : 'not connected') + ', lag ' + duration(rep.lag_seconds) : 'none yet',
      },
    }
  })
  fill('cluster',
    el('p', { class: 'note' }, 'This node: ' + cluster.body.self + '; live: ' + (cluster.body.live || []).join(', ')),
    table([
      { title: 'Member', field: 'name' }, { title: 'State', field: 'state' }, { title: 'Relay URL', field: 'relay_url' },
      { title: 'Last heartbeat', field: 'heartbeat' }, { title: 'Replication', field: 'replication', wrap: true },
    ], rows))
}

function renderFederation(federation) {
  if (federation.status === 503 || federation.status === 404)
    return fill('federation', el('p', { class: 'note', 'data-empty': 'federation' }, federation.error))
  if (federation.status !== 200) return unavailable('federation', federation)
  const peers = federation.body.peers || []
  if (peers.length === 0) return fill('federation', note('No federation peers.'))
  const rows = peers.map((p) => ({
    attrs: { 'data-peer': p.name },
    cells: {
      name: p.name,
      direction: p.direction + ' / ' + (p.mode || ''),
      status: badge(p.status, tone(p.status)),
      endpoint: p.endpoint || '',
      last_seen: ago(p.last_seen),
      problem: p.pin_mismatch ? 'pin mismatch' : (p.handshake && (p.handshake.error || (!p.handshake.success && p.handshake.message))) || '',
    },
  }))
  fill('federation', table([
    { title: 'Peer', field: 'name' }, { title: 'Direction / mode', field: 'direction' }, { title: 'Status', field: 'status' },
    { title: 'Endpoint', field: 'endpoint' }, { title: 'Last seen', field: 'last_seen' },
    { title: 'Problem', field: 'problem', wrap: true },
  ], rows))
}

// -- the refresh loop -------------------------------------------------------

let lastGood = null

function showProblem(text) {
  const box = document.getElementById('problem')
  box.textContent = text
  box.hidden = !text
}

async function refresh() {
  const paths = ['/health', '/api/v1/actors', '/api/v1/sync/servers', '/api/v1/sync/health',
    '/api/v1/grasp/repos', '/api/v1/relays', '/api/v1/cluster', '/api/v1/federation/peers']
  const [health, actors, servers, syncHealth, repos, relays, cluster, federation] = await Promise.all(paths.map(get))
  const answers = [health, actors, servers, syncHealth, repos, relays, cluster, federation]
  if (answers.every((a) => a.status === 0)) {
    document.body.dataset.state = 'down'
    showProblem('Cannot reach the node at ' + location.host + ' (' + health.error + ')' +
      (lastGood ? '; the figures below are from ' + lastGood.toLocaleTimeString() : '') + '. Retrying every ' + REFRESH_MS / 1000 + ' s.')
    return
  }
  const refused = answers.find((a) => a.status === 401)
  renderHealth(health, syncHealth)
  renderActors(actors)
  renderSyncServers(servers, syncHealth, actors)
  renderRepos(repos)
  renderRelays(relays)
  renderCluster(cluster)
  renderFederation(federation)
  lastGood = new Date()
  document.getElementById('updated').textContent = 'updated ' + lastGood.toLocaleTimeString() + ', every ' + REFRESH_MS / 1000 + ' s'
  if (refused) {
    document.body.dataset.state = 'unauthorized'
    showProblem('401: the admin API refused ' + (currentToken() ? 'the token' : 'the request without a token') +
      ' (' + refused.error + '). Enter the admin token ([admin] token in ferry.toml) above.')
  } else {
    document.body.dataset.state = 'ok'
    showProblem('')
  }
}

async function loop() {
  try {
    await refresh()
  } catch (err) {
    document.body.dataset.state = 'error'
    showProblem('The page failed to render an answer: ' + err.message)
  }
  setTimeout(loop, REFRESH_MS)
}

document.getElementById('token-form').addEventListener('submit', (event) => {
  event.preventDefault()
  const input = document.getElementById('token')
  sessionStorage.setItem(TOKEN_KEY, input.value)
  input.value = ''
  refresh()
})
document.getElementById('forget').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY)
  refresh()
})

keepTokenFromFragment()
loop()
</script>
</body>
</html>
)html";

constexpr std::string_view security_policy
  = "default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; connect-src 'self'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

} // namespace

std::string_view status_page_html() {
  return page;
}

std::string_view status_page_security_policy() {
  return security_policy;
}

} // namespace ferry
