// app.js: the nkms console. Hash routes:
//
//   #/keys                  key list
//   #/create                create a key
//   #/keys/TAG              key detail and settings
//   #/keys/TAG/playground   encrypt/decrypt and sign/verify with a key
//
// Signing in keeps the credentials in memory only (api.js); every view is
// drawn from API answers with the DOM helpers of dom.js.

import { ApiError, accessKey, kms, signIn, signOut, signedIn } from './api.js';
import { copyButton, countdown, countdownText, field, fmtDate, h, startCountdowns, stateBadge, tickCountdowns } from './dom.js';
import { openDangerDialog } from './dialog.js';
import { clearMessages, showError, showNotice } from './messages.js';
import { viewPlayground } from './playground.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');

let renderSeq = 0;
let carryNotice = ''; // shown by the next render, after a navigation

/** navigate goes to hash and shows message there. */
function navigate(hash, message) {
  carryNotice = message || '';
  if (location.hash === hash) {
    render();
  } else {
    location.hash = hash; // hashchange renders
  }
}

/**
 * act runs one user action: clears messages, disables the button while it
 * runs, shows the error or the notice, and redraws the view.
 */
async function act(button, fn, success) {
  clearMessages();
  if (button) {
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
  }
  const focusId = document.activeElement && document.activeElement.id;
  try {
    const result = await fn();
    const message = typeof success === 'function' ? success(result) : success;
    await render({ keepMessages: true }); // the notice comes with the new view
    if (message) {
      showNotice(message);
    }
    const again = focusId && document.getElementById(focusId);
    if (again) {
      again.focus();
    }
    return result;
  } catch (e) {
    showError(e);
    return undefined;
  } finally {
    if (button && button.isConnected) {
      button.disabled = false;
      button.removeAttribute('aria-busy');
    }
  }
}

// ---- routing -----------------------------------------------------------

const routes = [
  [/^#\/keys\/?$/, viewKeys],
  [/^#\/create\/?$/, viewCreate],
  [/^#\/keys\/([^/]+)\/playground\/?$/, viewPlayground],
  [/^#\/keys\/([^/]+)\/?$/, viewKey],
];

async function render(opts = {}) {
  const seq = ++renderSeq;
  if (!opts.keepMessages) {
    clearMessages();
  }
  if (carryNotice) {
    showNotice(carryNotice);
    carryNotice = '';
  }
  nav.hidden = !signedIn();
  document.getElementById('whoami').textContent = signedIn() ? `Signed in as ${accessKey()}` : '';
  let view = viewSignIn;
  let params = [];
  if (signedIn()) {
    view = viewNotFound;
    const hash = location.hash || '#/keys';
    for (const [re, v] of routes) {
      const m = hash.match(re);
      if (m) {
        view = v;
        params = m.slice(1).map(decodeURIComponent);
        break;
      }
    }
  }
  for (const a of nav.querySelectorAll('a')) {
    if (a.getAttribute('href') === location.hash) {
      a.setAttribute('aria-current', 'page');
    } else {
      a.removeAttribute('aria-current');
    }
  }
  let content;
  try {
    content = await view(...params);
  } catch (e) {
    content = h('section', { class: 'card' }, h('h1', {}, 'Something went wrong'),
      h('p', {}, 'The page could not be loaded. The error is shown above.'));
    showError(e);
  }
  if (seq !== renderSeq) {
    return; // a newer render won
  }
  main.replaceChildren(content);
  tickCountdowns();
  const af = main.querySelector('[data-autofocus]');
  if (af) {
    af.focus();
  }
}

window.addEventListener('hashchange', () => {
  render().then(() => {
    if (!main.querySelector('[data-autofocus]')) {
      main.focus();
    }
  });
});

document.getElementById('sign-out').addEventListener('click', () => {
  signOut();
  location.hash = '#/keys';
  render();
});

startCountdowns();

// ---- sign-in -----------------------------------------------------------

function viewSignIn() {
  const ak = h('input', { id: 'signin-access-key', name: 'accessKey', autocomplete: 'off', spellcheck: 'false', required: true, 'data-autofocus': true });
  const sk = h('input', { id: 'signin-secret-key', name: 'secretKey', type: 'password', autocomplete: 'off', required: true });
  const submit = h('button', { type: 'submit', id: 'signin-submit' }, 'Sign in');
  const form = h('form', {
    id: 'signin-form',
    class: 'card narrow',
    onsubmit: async (ev) => {
      ev.preventDefault();
      clearMessages();
      submit.disabled = true;
      try {
        await signIn(ak.value.trim(), sk.value);
        await kms.listKeys(1, 1); // check the credentials before showing anything
      } catch (e) {
        signOut();
        showError(e, 'Sign-in failed');
        submit.disabled = false;
        sk.focus();
        return;
      }
      sk.value = '';
      if (!location.hash || location.hash === '#/' || location.hash === '#/signin') {
        location.hash = '#/keys'; // hashchange renders
      } else {
        await render({ keepMessages: true });
      }
      main.focus();
    },
  },
  h('h1', {}, 'Sign in'),
  h('p', { class: 'muted' },
    'Use an nkms access key and its secret key. They stay in this page\'s memory only: nothing is stored, ',
    'and reloading the page signs you out. Every request is signed in your browser (signature v2).'),
  field('Access key', ak),
  field('Secret key', sk),
  h('div', { class: 'actions' }, submit));
  return form;
}

function viewNotFound() {
  return h('section', { class: 'card' }, h('h1', {}, 'Page not found'),
    h('p', {}, h('a', { href: '#/keys' }, 'Back to the key list')));
}

// ---- key list ----------------------------------------------------------

const pageSize = 20;
let listPage = 1;

async function viewKeys() {
  const list = await kms.listKeys(listPage, pageSize);
  if (list.keyList.length === 0 && listPage > 1) {
    listPage = 1;
    return viewKeys();
  }
  // The list lacks the current version and next rotation: ask each key.
  const infos = await Promise.all(list.keyList.map((k) => kms.getKey(k.keyTag).catch((e) => e)));
  const failed = infos.find((i) => i instanceof Error);
  if (failed) {
    showError(failed, 'Some key details could not be loaded');
  }
  const rows = list.keyList.map((k, i) => {
    const info = infos[i] instanceof Error ? null : infos[i];
    return h('tr', { 'data-tag': k.keyTag, 'data-status': k.status },
      h('th', { scope: 'row' }, h('a', { href: `#/keys/${encodeURIComponent(k.keyTag)}` }, k.keyName)),
      h('td', {}, stateBadge(k.status),
        k.status === 'REVOKE' && k.destroyDate ? [' ', countdown(k.destroyDate)] : null),
      h('td', { class: 'mono', title: k.keyTag }, shortTag(k.keyTag)),
      h('td', {}, k.keyType, k.isConvergent ? h('span', { class: 'muted' }, ' (convergent)') : null),
      h('td', { class: 'num' }, info ? `v${info.currentVersion}` : '?'),
      h('td', {}, fmtDate(k.registerDate)),
      h('td', {}, info && info.isAutoRotation ? fmtDate(info.nextRotationDate) : 'off'));
  });
  const pager = list.totalPageNo > 1
    ? h('nav', { class: 'pager', 'aria-label': 'Pages' },
      h('button', { type: 'button', class: 'secondary', disabled: listPage <= 1, onclick: () => { listPage--; render(); } }, 'Previous page'),
      h('span', {}, `Page ${list.currentPageNo} of ${list.totalPageNo}`),
      h('button', { type: 'button', class: 'secondary', disabled: listPage >= list.totalPageNo, onclick: () => { listPage++; render(); } }, 'Next page'))
    : null;
  return h('section', { id: 'key-list', class: 'card' },
    h('div', { class: 'heading' },
      h('h1', {}, 'Keys'),
      h('span', { class: 'muted' }, `${list.totalCount} key${list.totalCount === 1 ? '' : 's'}`),
      h('a', { href: '#/create', class: 'button', id: 'list-create' }, 'Create key')),
    list.keyList.length === 0
      ? h('p', { id: 'no-keys' }, 'No keys yet. ', h('a', { href: '#/create' }, 'Create the first one.'))
      : h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Keys table' },
        h('table', { id: 'key-table' },
          h('thead', {}, h('tr', {},
            ['Name', 'State', 'Tag', 'Type', 'Current version', 'Created', 'Next rotation'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, rows))),
    pager);
}

function shortTag(tag) {
  return tag.length > 16 ? `${tag.slice(0, 12)}…` : tag;
}

// ---- create ------------------------------------------------------------

function viewCreate() {
  const name = h('input', { id: 'create-name', name: 'keyName', required: true, minlength: 3, maxlength: 15, pattern: '[A-Za-z][A-Za-z0-9_\\-]{2,14}', autocomplete: 'off', spellcheck: 'false' });
  const type = h('select', { id: 'create-type', name: 'keyType' },
    h('option', { value: 'AES256' }, 'AES256 — symmetric, encrypt and decrypt'),
    h('option', { value: 'RSA2048' }, 'RSA2048 — encrypt, decrypt, sign and verify'),
    h('option', { value: 'ECDSA' }, 'ECDSA (P-256) — sign and verify'));
  const memo = h('textarea', { id: 'create-memo', name: 'memo', maxlength: 100, rows: 2 });
  const auto = h('input', { id: 'create-auto', name: 'isAutoRotation', type: 'checkbox' });
  const period = h('input', { id: 'create-period', name: 'rotationPeriod', type: 'number', min: 1, max: 730, value: '90', disabled: true, required: true });
  const conv = h('input', { id: 'create-convergent', name: 'isConvergent', type: 'checkbox' });
  auto.addEventListener('change', () => { period.disabled = !auto.checked; });
  type.addEventListener('change', () => {
    conv.disabled = type.value !== 'AES256';
    if (conv.disabled) {
      conv.checked = false;
    }
  });
  const submit = h('button', { type: 'submit', id: 'create-submit' }, 'Create key');
  return h('form', {
    id: 'create-form',
    class: 'card narrow',
    onsubmit: async (ev) => {
      ev.preventDefault();
      clearMessages();
      const req = {
        keyName: name.value.trim(),
        keyType: type.value,
        protectionType: 'BASIC',
        isAutoRotation: auto.checked,
      };
      if (auto.checked) {
        req.rotationPeriod = Number(period.value);
      }
      if (memo.value) {
        req.memo = memo.value;
      }
      if (conv.checked) {
        req.isConvergent = true;
      }
      submit.disabled = true;
      try {
        const key = await kms.createKey(req);
        navigate(`#/keys/${encodeURIComponent(key.keyTag)}`, `Key ${key.keyName} created (${key.keyType}, tag ${key.keyTag}).`);
      } catch (e) {
        showError(e, 'The key was not created');
        submit.disabled = false;
      }
    },
  },
  h('h1', {}, 'Create key'),
  field('Name', name, '3 to 15 characters: letters, digits, - and _; starts with a letter; unique.'),
  field('Type', type),
  field('Memo (optional)', memo, 'Up to 100 characters.'),
  h('div', { class: 'field check' }, auto, h('label', { for: 'create-auto' }, 'Rotate automatically')),
  field('Rotation period (days)', period, '1 to 730 days; used when automatic rotation is on.'),
  h('div', { class: 'field check' }, conv, h('label', { for: 'create-convergent' }, 'Convergent encryption (AES256 only): the same plaintext and context always give the same ciphertext; a context is then required.')),
  h('div', { class: 'actions' }, h('a', { href: '#/keys', class: 'button secondary' }, 'Cancel'), submit));
}

// ---- key detail ----------------------------------------------------------

function section(id, title, ...children) {
  return h('section', { id, class: 'card', 'aria-labelledby': `${id}-title` }, h('h2', { id: `${id}-title` }, title), children);
}

function sectionError(e) {
  return h('p', { class: 'error-inline', role: 'alert' }, e instanceof ApiError ? e.describe() : String(e));
}

async function viewKey(tag) {
  const [key, versions, acl, gen, activity] = await Promise.all([
    kms.getKey(tag),
    kms.versions(tag).catch((e) => e),
    kms.acl(tag).catch((e) => e),
    kms.tokenGenerator(tag).catch((e) => e),
    kms.activities(tag, 20).catch((e) => e),
  ]);
  const path = `#/keys/${encodeURIComponent(tag)}`;
  const revoke = key.status === 'REVOKE';

  const actions = h('div', { class: 'actions wrap', role: 'group', 'aria-label': 'Key actions' },
    h('a', { href: `${path}/playground`, class: 'button', id: 'open-playground' }, 'Playground'),
    key.status === 'ENABLE' ? h('button', {
      type: 'button', id: 'rotate-key',
      onclick: (ev) => act(ev.currentTarget, () => kms.rotate(tag), (r) => `Key rotated: version ${r.version} is now current.`),
    }, 'Rotate now') : null,
    key.status === 'ENABLE' ? h('button', {
      type: 'button', id: 'disable-key', class: 'secondary',
      onclick: (ev) => act(ev.currentTarget, () => kms.disableKey(tag), 'Key disabled: it no longer serves crypto requests.'),
    }, 'Disable') : null,
    key.status === 'DISABLE' ? h('button', {
      type: 'button', id: 'enable-key',
      onclick: (ev) => act(ev.currentTarget, () => kms.enableKey(tag), 'Key enabled.'),
    }, 'Enable') : null,
    !revoke ? h('button', {
      type: 'button', id: 'request-deletion', class: 'danger',
      onclick: (ev) => requestDeletion(ev.currentTarget, key),
    }, 'Request deletion…') : null,
    revoke ? h('button', {
      type: 'button', id: 'cancel-deletion',
      onclick: (ev) => act(ev.currentTarget, () => kms.cancelDeletion(tag), 'Deletion cancelled. The key is disabled: enable it to use it again.'),
    }, 'Cancel deletion') : null,
    revoke ? h('button', {
      type: 'button', id: 'delete-now', class: 'danger',
      onclick: (ev) => deleteNow(ev.currentTarget, key),
    }, 'Delete now…') : null);

  const banner = revoke ? h('div', { class: 'banner danger-banner', id: 'deletion-banner' },
    h('strong', {}, 'Pending deletion. '),
    'This key is disabled and will be ',
    key.destroyDate ? [countdown(key.destroyDate), ` (at ${fmtDate(key.destroyDate)}). `] : 'destroyed. ',
    'Cancel the deletion to keep it.') : null;

  const info = h('dl', { class: 'info' },
    dt('Tag', h('span', { class: 'mono', id: 'info-tag' }, key.keyTag)),
    dt('Name', key.keyName),
    dt('State', stateBadge(key.status)),
    dt('Type', key.keyType),
    dt('Protection', key.protectionType),
    dt('Current version', h('span', { id: 'info-version' }, String(key.currentVersion))),
    dt('Convergent', key.isConvergent ? 'yes' : 'no'),
    dt('Automatic rotation', key.isAutoRotation ? `every ${key.rotationPeriod} days` : 'off'),
    dt('Next rotation', key.isAutoRotation ? fmtDate(key.nextRotationDate) : '—'),
    dt('Created', fmtDate(key.registerDate)),
    dt('Destroy date', key.destroyDate ? fmtDate(key.destroyDate) : '—'),
    dt('Keystore', String(key.keystoreId)),
    key.nrn ? dt('NRN', h('span', { class: 'mono' }, key.nrn)) : null,
    dt('Memo', key.memo || '—'));

  return h('div', { id: 'key-detail', 'data-tag': key.keyTag, 'data-status': key.status, 'data-version': key.currentVersion, 'data-name': key.keyName },
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/keys' }, 'Keys'), ' › ', key.keyName),
    h('div', { class: 'heading' }, h('h1', { id: 'key-title' }, key.keyName), stateBadge(key.status)),
    banner,
    actions,
    section('key-info', 'Details', info),
    section('key-settings', 'Settings', settingsForms(key)),
    section('key-versions', 'Versions', versions instanceof Error ? sectionError(versions) : versionsTable(key, versions)),
    section('key-acl', 'IP access list (token requests)', acl instanceof Error ? sectionError(acl) : aclView(key, acl)),
    section('key-tokens', 'Token generator and tokens', gen instanceof Error ? sectionError(gen) : tokensView(key, gen)),
    section('key-activity', 'Recent activity (last 24 hours)', activity instanceof Error ? sectionError(activity) : activityTable(activity)));
}

function dt(term, ...desc) {
  return h('div', {}, h('dt', {}, term), h('dd', {}, desc));
}

function settingsForms(key) {
  const tag = key.keyTag;
  const name = h('input', { id: 'rename-input', value: key.keyName, required: true, minlength: 3, maxlength: 15, pattern: '[A-Za-z][A-Za-z0-9_\\-]{2,14}', autocomplete: 'off', spellcheck: 'false' });
  const memo = h('textarea', { id: 'memo-input', maxlength: 100, rows: 2 });
  memo.value = key.memo || '';
  const period = h('input', { id: 'period-input', type: 'number', min: 1, max: 730, value: String(key.rotationPeriod || 90), required: true });
  return [
    h('form', {
      id: 'rename-form', class: 'inline-form',
      onsubmit: (ev) => {
        ev.preventDefault();
        act(ev.submitter, () => kms.rename(tag, name.value.trim()), (r) => `Key renamed to ${r.keyName}.`);
      },
    }, field('Name', name), h('button', { type: 'submit', id: 'rename-submit' }, 'Rename')),
    h('form', {
      id: 'memo-form', class: 'inline-form',
      onsubmit: (ev) => {
        ev.preventDefault();
        act(ev.submitter, () => kms.updateMemo(tag, memo.value), 'Memo saved.');
      },
    }, field('Memo', memo), h('button', { type: 'submit', id: 'memo-submit' }, 'Save memo')),
    h('div', { class: 'inline-form' },
      h('p', {}, 'Automatic rotation is ', h('strong', { id: 'auto-rotation-state' }, key.isAutoRotation ? 'on' : 'off'),
        key.isAutoRotation ? `: every ${key.rotationPeriod} days, next on ${fmtDate(key.nextRotationDate)}.` : '.'),
      key.isAutoRotation
        ? h('button', { type: 'button', id: 'auto-rotation-off', class: 'secondary', onclick: (ev) => act(ev.currentTarget, () => kms.disableAutoRotation(tag), 'Automatic rotation turned off.') }, 'Turn automatic rotation off')
        : h('button', { type: 'button', id: 'auto-rotation-on', onclick: (ev) => act(ev.currentTarget, () => kms.enableAutoRotation(tag), (r) => `Automatic rotation turned on: next on ${fmtDate(r.nextRotationDate)}.`) }, 'Turn automatic rotation on')),
    h('form', {
      id: 'period-form', class: 'inline-form',
      onsubmit: (ev) => {
        ev.preventDefault();
        act(ev.submitter, () => kms.rotationPeriod(tag, Number(period.value)), (r) => `Rotation period set to ${r.rotationPeriod} days.`);
      },
    }, field('Rotation period (days, 1–730)', period), h('button', { type: 'submit', id: 'period-submit' }, 'Save period')),
  ];
}

function versionsTable(key, v) {
  const tag = key.keyTag;
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Versions table' },
    h('table', { id: 'versions-table' },
      h('thead', {}, h('tr', {}, ['Version', 'State', 'Created (rotated)', 'State changed', 'Action'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, v.versionList.slice().reverse().map((ver) => h('tr', { 'data-version': ver.version },
        h('th', { scope: 'row' }, `v${ver.version}`, ver.version === v.currentVersion ? h('span', { class: 'muted' }, ' (current)') : null),
        h('td', {}, stateBadge(ver.status)),
        h('td', {}, fmtDate(ver.rotatedDate)),
        h('td', {}, fmtDate(ver.statusDate)),
        h('td', {}, ver.status === 'ENABLE'
          ? h('button', {
            type: 'button', class: 'secondary small', id: `version-${ver.version}-disable`,
            disabled: ver.version === v.currentVersion,
            title: ver.version === v.currentVersion ? 'The current version cannot be disabled' : null,
            onclick: (ev) => act(ev.currentTarget, () => kms.disableVersion(tag, ver.version), `Version ${ver.version} disabled: data encrypted with it cannot be decrypted until it is enabled again.`),
          }, `Disable v${ver.version}`)
          : h('button', {
            type: 'button', class: 'small', id: `version-${ver.version}-enable`,
            onclick: (ev) => act(ev.currentTarget, () => kms.enableVersion(tag, ver.version), `Version ${ver.version} enabled.`),
          }, `Enable v${ver.version}`)))))));
}

function aclView(key, acl) {
  const tag = key.keyTag;
  const ip = h('input', { id: 'acl-ip', placeholder: '192.0.2.10 or 10.0.0.0/8', autocomplete: 'off', spellcheck: 'false', required: true });
  const list = acl.allowedIpList || [];
  return [
    h('p', {}, 'The IP access list limits where token requests may come from. It is ',
      h('strong', { id: 'acl-state' }, acl.isAclEnabled ? 'enabled' : 'disabled'), '.',
      acl.isAclEnabled && list.length === 0 ? ' With an empty list every token request is refused.' : ''),
    acl.isAclEnabled
      ? h('button', { type: 'button', id: 'acl-disable', class: 'secondary', onclick: (ev) => act(ev.currentTarget, () => kms.disableAcl(tag), 'IP access list disabled.') }, 'Disable the IP access list')
      : h('button', { type: 'button', id: 'acl-enable', onclick: (ev) => act(ev.currentTarget, () => kms.enableAcl(tag), 'IP access list enabled.') }, 'Enable the IP access list'),
    list.length === 0 ? h('p', { class: 'muted' }, 'No addresses in the list.')
      : h('ul', { id: 'acl-list', class: 'plain-list' }, list.map((addr) => h('li', {},
        h('span', { class: 'mono' }, addr), ' ',
        h('button', { type: 'button', class: 'secondary small', 'aria-label': `Remove ${addr}`, onclick: (ev) => act(ev.currentTarget, () => kms.deleteAcl(tag, [addr]), `${addr} removed.`) }, 'Remove')))),
    h('form', {
      id: 'acl-add-form', class: 'inline-form',
      onsubmit: (ev) => {
        ev.preventDefault();
        const addrs = ip.value.split(/[\s,]+/).filter(Boolean);
        act(ev.submitter, () => kms.addAcl(tag, addrs), `${addrs.join(', ')} added.`);
      },
    }, field('Add IPv4 addresses (separate several with spaces or commas)', ip), h('button', { type: 'submit', id: 'acl-add' }, 'Add')),
  ];
}

function tokensView(key, gen) {
  const tag = key.keyTag;
  const active = gen.status === 'ACTIVE';
  const accessHours = h('input', { id: 'token-access-hours', placeholder: '72', autocomplete: 'off', inputmode: 'numeric' });
  const refreshHours = h('input', { id: 'token-refresh-hours', placeholder: '2160', autocomplete: 'off', inputmode: 'numeric' });
  const out = h('div', { id: 'token-output', 'aria-live': 'polite' });
  const hours = (v) => {
    const t = v.trim();
    if (t === '') {
      return undefined;
    }
    if (t.toUpperCase() === 'UL') {
      return 'UL';
    }
    return Number(t);
  };
  return [
    h('p', {}, 'Token generator: ', h('strong', { id: 'token-generator-state' }, active ? 'active' : 'inactive'),
      active ? ` since ${fmtDate(gen.enabledDate)}; ${gen.issuedTokenCount} token${gen.issuedTokenCount === 1 ? '' : 's'} issued.` : '.',
      !active && gen.disabledDate ? ` Deleted on ${fmtDate(gen.disabledDate)}.` : ''),
    h('div', { class: 'actions wrap' },
      !active ? h('button', { type: 'button', id: 'token-generator-create', onclick: (ev) => act(ev.currentTarget, () => kms.createTokenGenerator(tag), 'Token generator created.') }, 'Create token generator') : null,
      active ? h('button', {
        type: 'button', id: 'token-generator-replace', class: 'secondary',
        onclick: async (ev) => {
          const button = ev.currentTarget;
          const ok = await openDangerDialog({
            title: 'Replace the token generator',
            paragraphs: ['A new token generator replaces the current one. Every token the current one issued stops working at once; this cannot be undone.'],
            confirmLabel: 'Replace',
          });
          if (ok) {
            act(button, () => kms.replaceTokenGenerator(tag), 'Token generator replaced: earlier tokens no longer work.');
          }
        },
      }, 'Replace token generator') : null,
      active ? h('button', {
        type: 'button', id: 'token-generator-delete', class: 'danger',
        onclick: async (ev) => {
          const button = ev.currentTarget;
          const ok = await openDangerDialog({
            title: 'Delete the token generator',
            paragraphs: ['Token authentication to this key stops, and every token issued so far stops working at once. You can create a new generator later.'],
            confirmLabel: 'Delete',
          });
          if (ok) {
            act(button, () => kms.deleteTokenGenerator(tag), 'Token generator deleted.');
          }
        },
      }, 'Delete token generator') : null),
    active ? h('form', {
      id: 'token-set-form', class: 'inline-form',
      onsubmit: async (ev) => {
        ev.preventDefault();
        clearMessages();
        const body = {};
        const a = hours(accessHours.value);
        const r = hours(refreshHours.value);
        if (a !== undefined) {
          body.accessTokenHours = a;
        }
        if (r !== undefined) {
          body.refreshTokenHours = r;
        }
        try {
          const set = await kms.createTokenSet(tag, body);
          out.replaceChildren(
            h('p', { class: 'banner' }, h('strong', {}, 'Copy these tokens now: '), 'they are shown only once and are not kept by the console.'),
            tokenRow('Access token', 'token-access', set.accessToken),
            tokenRow('Refresh token', 'token-refresh', set.refreshToken));
        } catch (e) {
          showError(e, 'No token set was issued');
        }
      },
    },
    field('Access token lifetime (hours, 1–17520, or UL)', accessHours, 'Empty: 72 hours.'),
    field('Refresh token lifetime (hours, 1–17520, or UL)', refreshHours, 'Empty: 2160 hours.'),
    h('button', { type: 'submit', id: 'token-set-submit' }, 'Issue a token set')) : null,
    out,
  ];
}

function tokenRow(label, id, value) {
  const ta = h('textarea', { id, readonly: true, rows: 3, class: 'mono', spellcheck: 'false' });
  ta.value = value;
  return h('div', { class: 'field' }, h('label', { for: id }, label), ta, copyButton(`Copy ${label.toLowerCase()}`, () => value));
}

function activityTable(a) {
  const list = a.activityLogList || [];
  if (list.length === 0) {
    return h('p', { class: 'muted' }, 'No activity in the last 24 hours.');
  }
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Activity table' },
    h('table', { id: 'activity-table' },
      h('thead', {}, h('tr', {}, ['Time', 'Action', 'Result', 'Auth', 'Requestor', 'IP', 'Message'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, list.map((e) => {
        const d = e.data || {};
        const api = d.api || {};
        const who = d.requestor || {};
        return h('tr', {},
          h('td', {}, fmtDate(Date.parse(e.timestamp))),
          h('td', {}, api.action || ''),
          h('td', {}, h('span', { class: `badge result-${String(api.result).toLowerCase()}` }, api.result || '')),
          h('td', {}, api.type || ''),
          h('td', { class: 'mono' }, `${who.requestType || ''} ${who.id || ''}`.trim()),
          h('td', { class: 'mono' }, who.ip || ''),
          h('td', {}, e.message || ''));
      }))),
    a.totalCount > list.length ? h('p', { class: 'muted' }, `Showing the latest ${list.length} of ${a.totalCount}.`) : null);
}

async function requestDeletion(button, key) {
  const ok = await openDangerDialog({
    title: `Request deletion of ${key.keyName}`,
    paragraphs: [
      'Requesting deletion disables the key at once: it can no longer encrypt, decrypt, sign or verify.',
      'The key and all its versions are destroyed for good 72 hours after the request. Until then you can cancel the deletion; the key then comes back disabled.',
      'After destruction, data encrypted with this key can never be decrypted again.',
    ],
    name: key.keyName,
    confirmLabel: 'Request deletion',
  });
  if (!ok) {
    return;
  }
  await act(button, async () => {
    await kms.requestDeletion(key.keyTag);
    return kms.getKey(key.keyTag); // the server's destroyDate, not a local guess
  }, (k) => `Deletion requested: ${k.keyName} will be destroyed on ${fmtDate(k.destroyDate)} (${countdownText(k.destroyDate)}) unless you cancel it.`);
}

async function deleteNow(button, key) {
  const ok = await openDangerDialog({
    title: `Delete ${key.keyName} now`,
    paragraphs: [
      'This destroys the key and all its versions immediately instead of at the end of the 72-hour window.',
      'It cannot be undone: data encrypted with this key can never be decrypted again and its signatures can no longer be verified.',
    ],
    name: key.keyName,
    confirmLabel: 'Delete for good',
  });
  if (!ok) {
    return;
  }
  clearMessages();
  button.disabled = true;
  try {
    await kms.deleteKey(key.keyTag);
  } catch (e) {
    showError(e, 'The key was not deleted');
    button.disabled = false;
    return;
  }
  navigate('#/keys', `Key ${key.keyName} was deleted for good.`);
}

render();
