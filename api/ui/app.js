// patchtree console: sign-in, hash routing, the header and navigation, live updates.
// Each view is a module in views/ exporting {title, topics, head?(ctx), load(ctx)}: head builds
// the parts that stay while the view is shown (forms, results of writes), load fetches the
// view's data and answers the node that shows it; load runs again on a live change of one of
// the view's topics.

import * as api from './api.js';
import {h, errorBox} from './dom.js';
import overview from './views/overview.js';
import sites from './views/sites.js';
import site from './views/site.js';
import bulletins from './views/bulletins.js';
import bulletin from './views/bulletin.js';
import policies from './views/policies.js';
import catalog from './views/catalog.js';
import audit from './views/audit.js';
import alerts from './views/alerts.js';

// NAV lists the header's links and the roles that may read each view (null: every role; an
// agent reads no compliance report, so neither sites nor bulletins).
const NAV = [
  {hash: '#/overview', label: 'Overview', roles: null},
  {hash: '#/sites', label: 'Sites', roles: ['admin', 'rollout', 'auditor']},
  {hash: '#/bulletins', label: 'Bulletins', roles: ['admin', 'rollout', 'auditor']},
  {hash: '#/policies', label: 'Policies', roles: ['admin', 'rollout']},
  {hash: '#/catalog', label: 'Catalog', roles: null},
  {hash: '#/audit', label: 'Audit', roles: ['admin', 'auditor']},
  {hash: '#/alerts', label: 'Alerts', roles: null},
];

// VIEWS maps a route to its view: "sites" with an argument is the site page, and so on.
const VIEWS = {
  overview: {name: 'overview', mod: overview},
  sites: {name: 'sites', mod: sites, withArg: {name: 'site', mod: site}},
  bulletins: {name: 'bulletins', mod: bulletins, withArg: {name: 'bulletin', mod: bulletin}},
  policies: {name: 'policies', mod: policies},
  catalog: {name: 'catalog', mod: catalog},
  audit: {name: 'audit', mod: audit},
  alerts: {name: 'alerts', mod: alerts},
};

// WRITES says which role may use which write control; views ask ctx.can(what).
const WRITES = {
  'policy.toggle': ['admin', 'rollout'],
  'policy.replicate': ['admin', 'rollout'],
  'catalog.import': ['admin'],
};

const state = {
  session: null,
  events: null,
  current: null, // {name, mod, ctx, body}
  loading: false,
  pending: false,
};

const $ = (id) => document.getElementById(id);

// parseHash splits "#/sites/hq%2Femea?x=1" into {view: "sites", arg: "hq/emea", params}.
export function parseHash(hash) {
  let s = (hash || '').replace(/^#\/?/, '');
  let q = '';
  const i = s.indexOf('?');
  if (i >= 0) {
    q = s.slice(i + 1);
    s = s.slice(0, i);
  }
  const j = s.indexOf('/');
  const view = j >= 0 ? s.slice(0, j) : s;
  let arg = j >= 0 ? s.slice(j + 1) : '';
  try {
    arg = decodeURIComponent(arg);
  } catch (e) {
    // A malformed escape: keep the text as it came.
  }
  return {view: view || 'overview', arg, params: new URLSearchParams(q)};
}

function navAllowed(item) {
  return !item.roles || item.roles.includes(state.session.role);
}

function renderHeader() {
  const s = state.session;
  $('whoami').replaceChildren(h('span', {class: 'who-name'}, s.name || 'signed in'), ' ', h('span', {class: 'badge badge-role'}, s.role));
  $('nav').replaceChildren(...NAV.filter(navAllowed).map((item) => h('li', null, h('a', {href: item.hash}, item.label))));
  markNav();
}

function markNav() {
  const {view} = parseHash(location.hash);
  for (const a of $('nav').querySelectorAll('a')) {
    if (a.getAttribute('href') === '#/' + view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function showSignIn(message) {
  closeEvents();
  state.session = null;
  state.current = null;
  api.setCSRF('');
  $('top').hidden = true;
  const view = $('view');
  view.replaceChildren();
  view.removeAttribute('data-view');
  view.removeAttribute('data-ready');
  view.hidden = true;
  $('signin-screen').hidden = false;
  $('signin-error').textContent = message || '';
  $('token').value = '';
  $('token').focus();
}

function signedIn(sess) {
  state.session = sess;
  api.setCSRF(sess.csrf);
  $('signin-screen').hidden = true;
  $('signin-error').textContent = '';
  $('top').hidden = false;
  $('view').hidden = false;
  renderHeader();
  openEvents();
  route(false);
}

async function doSignIn(token) {
  try {
    signedIn(await api.signIn(token));
  } catch (e) {
    showSignIn('Sign-in failed: ' + e.message);
  }
}

// route shows the view the hash names; focus moves to the view on a navigation.
function route(focus) {
  if (!state.session) return;
  markNav();
  const {view, arg, params} = parseHash(location.hash);
  let entry = VIEWS[view];
  if (entry && arg && entry.withArg) entry = entry.withArg;
  const navItem = NAV.find((n) => n.hash === '#/' + view);
  const main = $('view');
  main.removeAttribute('data-ready');
  if (!entry || (navItem && !navAllowed(navItem))) {
    state.current = null;
    main.setAttribute('data-view', 'unknown');
    const msg = entry ? 'Your role (' + state.session.role + ') may not open this view.' : 'There is no view "' + view + '".';
    main.replaceChildren(h('h1', null, 'Not available'), h('p', null, msg, ' ', h('a', {href: '#/overview'}, 'Go to the overview')));
    main.setAttribute('data-ready', 'true');
    return;
  }
  const ctx = {
    session: state.session,
    role: state.session.role,
    arg,
    params,
    can: (what) => (WRITES[what] || []).includes(state.session.role),
    navigate: (hash) => { location.hash = hash; },
    refresh: () => refresh(),
  };
  const body = h('div', {class: 'view-body', 'aria-busy': 'true'});
  const title = typeof entry.mod.title === 'function' ? entry.mod.title(ctx) : entry.mod.title;
  document.title = title + ' · patchtree console';
  main.setAttribute('data-view', entry.name);
  main.replaceChildren(...[h('h1', null, title), entry.mod.head ? entry.mod.head(ctx) : null, body].filter(Boolean));
  state.current = {name: entry.name, mod: entry.mod, ctx, body};
  state.pending = false;
  if (focus) main.focus();
  refresh();
}

// refresh loads the current view's data again; a refresh asked for while one runs is done
// once after it.
async function refresh() {
  const cur = state.current;
  if (!cur) return;
  if (state.loading) {
    state.pending = true;
    return;
  }
  state.loading = true;
  const main = $('view');
  main.removeAttribute('data-ready');
  cur.body.setAttribute('aria-busy', 'true');
  let node;
  try {
    node = await cur.mod.load(cur.ctx);
  } catch (e) {
    node = errorBox(e);
  }
  state.loading = false;
  if (state.current !== cur) {
    // The hash changed while loading: the new view has started its own load.
    if (state.pending && state.current) {
      state.pending = false;
      refresh();
    }
    return;
  }
  cur.body.replaceChildren(node);
  cur.body.setAttribute('aria-busy', 'false');
  if (state.pending) {
    state.pending = false;
    refresh();
    return;
  }
  main.setAttribute('data-ready', 'true');
}

function openEvents() {
  closeEvents();
  const es = new EventSource('/ui/events');
  state.events = es;
  const live = $('live');
  live.textContent = 'connecting…';
  live.className = 'live';
  let helloIndex = null;
  es.addEventListener('hello', (ev) => {
    live.textContent = 'live';
    live.className = 'live live-on';
    // A reconnect may have missed changes: read the view again if the state moved meanwhile.
    let idx = null;
    try {
      idx = JSON.parse(ev.data).index;
    } catch (e) {
      idx = null;
    }
    if (helloIndex !== null && idx !== helloIndex) refresh();
    helloIndex = idx;
  });
  es.addEventListener('change', (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch (e) {
      return;
    }
    const cur = state.current;
    if (!cur || !Array.isArray(msg.topics)) return;
    if (typeof msg.index === 'number') helloIndex = msg.index;
    if (msg.topics.some((t) => (cur.mod.topics || []).includes(t))) refresh();
  });
  es.addEventListener('error', async () => {
    if (state.events !== es) return;
    live.textContent = 'reconnecting…';
    live.className = 'live live-off';
    if (es.readyState === EventSource.CLOSED) {
      // The server refused the stream: the session may be gone. Any other failure to read
      // the session (the site restarting) is worth another try.
      try {
        await api.session();
      } catch (e) {
        if (e.status === 401) {
          showSignIn('Your session ended; sign in again.');
          return;
        }
      }
      setTimeout(() => { if (state.events === es) openEvents(); }, 5000);
    }
  });
}

function closeEvents() {
  if (state.events) {
    state.events.close();
    state.events = null;
  }
}

async function boot() {
  api.setUnauthorizedHandler(() => {
    if (state.session) showSignIn('Your session ended; sign in again.');
  });
  $('signin').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = $('token').value.trim();
    if (!token) {
      $('signin-error').textContent = 'Enter an API token.';
      return;
    }
    $('signin-error').textContent = '';
    doSignIn(token);
  });
  $('signout').addEventListener('click', async () => {
    // Stop the live updates and the view first: a load still running gets 401 once the
    // session is gone, which is no reason to say the session ended.
    const sess = state.session;
    closeEvents();
    state.current = null;
    state.session = null;
    try {
      await api.signOut();
    } catch (e) {
      if (e.status !== 401) {
        state.session = sess;
        openEvents();
        route(false);
        window.alert('Sign-out failed: ' + e.message);
        return;
      }
    }
    history.replaceState(null, '', location.pathname + '#/overview');
    showSignIn('Signed out.');
  });
  // The skip link moves focus to the view without changing the hash (the hash is the route).
  document.querySelector('a.skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    $('view').focus();
  });
  window.addEventListener('hashchange', () => {
    if (location.hash.startsWith('#token=')) {
      tokenFromHash();
      return;
    }
    route(true);
  });
  if (location.hash.startsWith('#token=')) {
    tokenFromHash();
    return;
  }
  try {
    signedIn(await api.session());
  } catch (e) {
    showSignIn(e.status === 401 ? '' : 'Could not read the session: ' + e.message);
  }
}

// tokenFromHash signs in with the token of a "#token=..." link and removes it from the URL.
function tokenFromHash() {
  const token = decodeURIComponent(location.hash.slice('#token='.length));
  history.replaceState(null, '', location.pathname + location.search + '#/overview');
  doSignIn(token);
}

boot();
