// api.js: the console's client of the nkms API. Every request is signed in
// the browser with NAVER signature v2 (internal/sigv2):
//
//   Base64(HMAC-SHA256(secret, METHOD + " " + pathAndQuery + "\n" + timestampMs + "\n" + accessKey))
//
// The credentials live only in this module's memory: never in storage or
// cookies, so a reload signs out. The secret key is imported as a
// non-extractable WebCrypto key and the string is dropped.

let session = null; // { accessKey, key: CryptoKey }

const encoder = new TextEncoder();

/** ApiError is a failed API call, with the API's own words. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code || '';
    this.details = details || '';
  }

  /** hint is one sentence about what the status usually means. */
  get hint() {
    switch (this.status) {
      case 0:
        return 'The nkms server could not be reached: check that it is running and the network is up.';
      case 400:
        return 'The server refused the request as invalid: check the values you entered.';
      case 401:
        if (this.code === '210') {
          return "Your access key's role does not allow this operation.";
        }
        return 'The access key or secret key is wrong, or this computer\'s clock differs from the server\'s by 5 minutes or more.';
      case 403:
        return 'The request was refused (for example by the key\'s IP access list).';
      case 404:
        return 'The key was not found: it may have been deleted, or the tag is wrong.';
      case 409:
        return 'This conflicts with an existing key (for example, the name is already taken).';
      case 413:
        return 'The request is too large for this operation.';
      case 422:
        return "The key's state does not allow this operation (for example, the key is disabled or pending deletion).";
      case 429:
        return 'You are rate limited: too many requests with this access key. Wait a moment and try again.';
      default:
        if (this.status >= 500) {
          return 'The server failed to handle the request; its log has the details.';
        }
        return '';
    }
  }

  /** describe is the full text shown to the user. */
  describe() {
    let text = this.message;
    if (this.details && this.details !== this.message) {
      text += ` (${this.details})`;
    }
    if (this.status) {
      text += ` [HTTP ${this.status}${this.code ? ', code ' + this.code : ''}]`;
    }
    const hint = this.hint;
    return hint ? `${text}. ${hint}` : text;
  }
}

export function signedIn() {
  return session !== null;
}

export function accessKey() {
  return session ? session.accessKey : '';
}

/** signIn keeps the credentials in memory; it does not contact the server. */
export async function signIn(accessKeyId, secret) {
  if (!globalThis.crypto || !crypto.subtle) {
    throw new ApiError(0, '', 'WebCrypto is not available', 'open the console over HTTPS or on localhost');
  }
  const key = await crypto.subtle.importKey(
    'raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  session = { accessKey: accessKeyId, key };
}

export function signOut() {
  session = null;
}

function base64(bytes) {
  let bin = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + chunk));
  }
  return btoa(bin);
}

/** textToBase64 is the standard Base64 of the UTF-8 bytes of text. */
export function textToBase64(text) {
  return base64(encoder.encode(text));
}

/** base64ToText decodes standard Base64 to text (UTF-8, replacing invalid bytes). */
export function base64ToText(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) {
    bytes[i] = bin.charCodeAt(i);
  }
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes);
}

/** signature returns the signature v2 of one request. */
export async function signature(key, method, requestURI, timestamp, accessKeyId) {
  const msg = `${method} ${requestURI}\n${timestamp}\n${accessKeyId}`;
  const mac = await crypto.subtle.sign('HMAC', key, encoder.encode(msg));
  return base64(new Uint8Array(mac));
}

/**
 * call sends one signed request and returns the "data" of the answer.
 * path is the API path (already escaped); query an object of parameters.
 */
export async function call(method, path, body, query) {
  if (!session) {
    throw new ApiError(401, '', 'Not signed in', '');
  }
  const url = new URL(path, location.origin);
  if (query) {
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') {
        url.searchParams.set(k, String(v));
      }
    }
  }
  const requestURI = url.pathname + url.search; // no bare "?" when there is no query
  const timestamp = String(Date.now());
  const headers = {
    'x-ncp-apigw-timestamp': timestamp,
    'x-ncp-iam-access-key': session.accessKey,
    'x-ncp-apigw-signature-v2': await signature(session.key, method, requestURI, timestamp, session.accessKey),
    Accept: 'application/json',
  };
  const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error', referrerPolicy: 'no-referrer' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url.pathname + url.search, init);
  } catch (e) {
    throw new ApiError(0, '', 'Network error', e && e.message);
  }
  let json = null;
  const text = await res.text();
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (json && json.error && typeof json.error === 'object') { // gateway error body
    throw new ApiError(res.status, json.error.errorCode, json.error.message, json.error.details);
  }
  if (!res.ok || !json || json.code !== 'SUCCESS') {
    const msg = json && (json.msg || json.message) ? (json.msg || json.message) : `HTTP ${res.status} ${res.statusText}`;
    throw new ApiError(res.ok ? 500 : res.status, json && json.code, msg, '');
  }
  return json.data;
}

const enc = encodeURIComponent;

// One function per API operation the console uses (ncp-kms-api.md §6).
export const kms = {
  listKeys: (pageNo, pageSize) => call('GET', '/kms/v1/keys', undefined, { pageNo, pageSize }),
  getKey: (tag) => call('GET', `/kms/v1/keys/${enc(tag)}`),
  createKey: (req) => call('POST', '/kms/v1/keys', req),
  enableKey: (tag) => call('POST', `/kms/v1/keys/${enc(tag)}/enable`),
  disableKey: (tag) => call('POST', `/kms/v1/keys/${enc(tag)}/disable`),
  rename: (tag, keyName) => call('PUT', `/kms/v1/keys/${enc(tag)}/name`, { keyName }),
  updateMemo: (tag, memo) => call('PUT', `/kms/v1/keys/${enc(tag)}/memo`, { memo }),
  rotate: (tag) => call('POST', `/kms/v1/keys/${enc(tag)}/rotate`),
  enableAutoRotation: (tag) => call('POST', `/kms/v1/keys/${enc(tag)}/enable-auto-rotation`),
  disableAutoRotation: (tag) => call('POST', `/kms/v1/keys/${enc(tag)}/disable-auto-rotation`),
  rotationPeriod: (tag, rotationPeriod) => call('PUT', `/kms/v1/keys/${enc(tag)}/rotation-period`, { rotationPeriod }),
  versions: (tag) => call('GET', `/kms/v1/keys/${enc(tag)}/versions`),
  enableVersion: (tag, v) => call('POST', `/kms/v1/keys/${enc(tag)}/versions/${enc(v)}/enable`),
  disableVersion: (tag, v) => call('POST', `/kms/v1/keys/${enc(tag)}/versions/${enc(v)}/disable`),
  requestDeletion: (tag) => call('POST', `/kms/v1/keys/${enc(tag)}/request-deletion`),
  cancelDeletion: (tag) => call('POST', `/kms/v1/keys/${enc(tag)}/cancel-deletion`),
  deleteKey: (tag) => call('DELETE', `/kms/v1/keys/${enc(tag)}`),
  encrypt: (tag, plaintext, context) => call('POST', `/kms/v1/keys/${enc(tag)}/encrypt`, withContext({ plaintext }, context)),
  decrypt: (tag, ciphertext, context) => call('POST', `/kms/v1/keys/${enc(tag)}/decrypt`, withContext({ ciphertext }, context)),
  sign: (tag, data) => call('POST', `/kms/v1/keys/${enc(tag)}/sign`, { data }),
  verify: (tag, data, signature) => call('POST', `/kms/v1/keys/${enc(tag)}/verify`, { data, signature }),
  acl: (tag) => call('GET', `/kms/v1/keys/${enc(tag)}/acl`),
  enableAcl: (tag) => call('POST', `/kms/v1/keys/${enc(tag)}/acl/enable`),
  disableAcl: (tag) => call('POST', `/kms/v1/keys/${enc(tag)}/acl/disable`),
  addAcl: (tag, ipList) => call('POST', `/kms/v1/keys/${enc(tag)}/acl`, { ipList }),
  deleteAcl: (tag, ipList) => call('DELETE', `/kms/v1/keys/${enc(tag)}/acl`, { ipList }),
  tokenGenerator: (tag) => call('GET', `/kms/v1/keys/${enc(tag)}/token-generator`),
  createTokenGenerator: (tag) => call('POST', `/kms/v1/keys/${enc(tag)}/token-generator`),
  replaceTokenGenerator: (tag) => call('PUT', `/kms/v1/keys/${enc(tag)}/token-generator`),
  deleteTokenGenerator: (tag) => call('DELETE', `/kms/v1/keys/${enc(tag)}/token-generator`),
  createTokenSet: (tag, hours) => call('POST', `/kms/v1/keys/${enc(tag)}/token-set`, hours),
  activities: (tag, pageSize) => call('GET', `/kms/v1/keys/${enc(tag)}/activities`, undefined, { pageNo: 1, pageSize }),
};

function withContext(body, context) {
  if (context) {
    body.context = textToBase64(context);
  }
  return body;
}
