// The console's requests: the session (cookie + CSRF token) and the /v1 API.

// APIError is a failed request: its HTTP status and the API's `error` text.
export class APIError extends Error {
  constructor(status, message, url, method) {
    super(message);
    this.status = status;
    this.url = url;
    this.method = method;
  }
}

let csrf = '';
let onUnauthorized = () => {};

// setCSRF keeps the session's CSRF token for writes.
export function setCSRF(token) {
  csrf = token || '';
}

// setUnauthorizedHandler is called when the API answers 401 (session gone or expired).
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

async function decode(resp, url, method) {
  const type = resp.headers.get('Content-Type') || '';
  let body = null;
  if (resp.status !== 204) {
    const text = await resp.text();
    if (type.includes('json') && text) {
      try {
        body = JSON.parse(text);
      } catch (e) {
        throw new APIError(resp.status, 'answer is not JSON: ' + e.message, url, method);
      }
    } else {
      body = text;
    }
  }
  if (!resp.ok) {
    const msg = body && typeof body === 'object' && body.error ? body.error : (resp.statusText || 'HTTP ' + resp.status);
    throw new APIError(resp.status, msg, url, method);
  }
  return body;
}

async function send(method, url, body) {
  const headers = {Accept: 'application/json'};
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(url, {
      method,
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new APIError(0, 'network error: ' + e.message, url, method);
  }
  try {
    return await decode(resp, url, method);
  } catch (e) {
    if (e instanceof APIError && e.status === 401 && !url.startsWith('/ui/session')) onUnauthorized(e);
    throw e;
  }
}

// get fetches a GET URL (path + query) and answers {url, data}: url is exactly what was
// fetched, which numbers on the page name in data-source.
export async function get(url) {
  const data = await send('GET', url);
  return {url, data};
}

// tryGet is get that answers {url, error} instead of throwing for a 403 (a role that may not
// read it) or 404, so a view can leave that part out.
export async function tryGet(url) {
  try {
    return await get(url);
  } catch (e) {
    if (e instanceof APIError && (e.status === 403 || e.status === 404)) return {url, error: e};
    throw e;
  }
}

// write sends a POST, PATCH, PUT or DELETE with the CSRF token.
export function write(method, url, body) {
  return send(method, url, body);
}

// session reads the current session (401 when signed out).
export function session() {
  return send('GET', '/ui/session');
}

// signIn exchanges an API token for a session cookie.
export function signIn(token) {
  return send('POST', '/ui/session', {token});
}

// signOut ends the session on every server of the site.
export function signOut() {
  return send('DELETE', '/ui/session');
}

// query builds "?a=1&b=2" from an object, leaving out empty values, in the object's key order.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}
