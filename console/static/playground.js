// playground.js: encrypt/decrypt and sign/verify with one key, as any
// client would (text as UTF-8 in Base64; a context for convergent keys).

import { base64ToText, kms, textToBase64 } from './api.js';
import { copyButton, field, h, stateBadge } from './dom.js';
import { clearMessages, showError } from './messages.js';

export async function viewPlayground(tag) {
  const key = await kms.getKey(tag);
  const canEncrypt = key.keyType === 'AES256' || key.keyType === 'RSA2048';
  const canSign = key.keyType === 'RSA2048' || key.keyType === 'ECDSA';
  const ctxField = (id) => key.isConvergent
    ? field('Context (required for this convergent key)', h('input', { id, required: true, maxlength: 50, autocomplete: 'off' }), 'Any text up to 50 bytes; decryption needs the same context.')
    : null;
  const ctxValue = (id) => (key.isConvergent ? document.getElementById(id).value : '');

  const plaintext = h('textarea', { id: 'pg-plaintext', rows: 3, required: true });
  const ciphertextOut = h('textarea', { id: 'pg-ciphertext', rows: 3, readonly: true, class: 'mono', spellcheck: 'false' });
  const ciphertextIn = h('textarea', { id: 'pg-ciphertext-in', rows: 3, required: true, class: 'mono', spellcheck: 'false' });
  const decrypted = h('output', { id: 'pg-decrypted', for: 'pg-ciphertext-in', class: 'output' });
  const message = h('textarea', { id: 'pg-message', rows: 3, required: true });
  const signatureOut = h('textarea', { id: 'pg-signature', rows: 3, readonly: true, class: 'mono', spellcheck: 'false' });
  const verifyMessage = h('textarea', { id: 'pg-verify-message', rows: 3, required: true });
  const verifySig = h('textarea', { id: 'pg-verify-signature', rows: 3, required: true, class: 'mono', spellcheck: 'false' });
  const verifyResult = h('output', { id: 'pg-verify-result', class: 'output' });

  const run = async (ev, fn) => {
    ev.preventDefault();
    clearMessages();
    const b = ev.submitter;
    if (b) {
      b.disabled = true;
    }
    try {
      await fn();
    } catch (e) {
      showError(e);
    } finally {
      if (b) {
        b.disabled = false;
      }
    }
  };

  return h('div', { id: 'playground', 'data-tag': key.keyTag },
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('a', { href: '#/keys' }, 'Keys'), ' › ', h('a', { href: `#/keys/${encodeURIComponent(tag)}`, id: 'pg-back' }, key.keyName), ' › Playground'),
    h('div', { class: 'heading' }, h('h1', {}, `Playground: ${key.keyName}`), stateBadge(key.status)),
    h('p', { class: 'muted' }, `${key.keyType} key, current version ${key.currentVersion}. Text is sent as UTF-8 in Base64, as any client would.`,
      key.status !== 'ENABLE' ? ' The key is not enabled, so the server will refuse these operations.' : ''),
    canEncrypt ? h('div', { class: 'grid2' },
      h('form', {
        id: 'pg-encrypt-form', class: 'card',
        onsubmit: (ev) => run(ev, async () => {
          const r = await kms.encrypt(tag, textToBase64(plaintext.value), ctxValue('pg-encrypt-context'));
          ciphertextOut.value = r.ciphertext;
          ciphertextIn.value = r.ciphertext;
          ciphertextOut.closest('.field').hidden = false;
        }),
      },
      h('h2', {}, 'Encrypt'),
      field('Plaintext', plaintext),
      ctxField('pg-encrypt-context'),
      h('button', { type: 'submit', id: 'pg-encrypt' }, 'Encrypt'),
      h('div', { class: 'field', hidden: true }, h('label', { for: 'pg-ciphertext' }, 'Ciphertext'), ciphertextOut,
        copyButton('Copy ciphertext', () => ciphertextOut.value))),
      h('form', {
        id: 'pg-decrypt-form', class: 'card',
        onsubmit: (ev) => run(ev, async () => {
          decrypted.value = '';
          const r = await kms.decrypt(tag, ciphertextIn.value.trim(), ctxValue('pg-decrypt-context'));
          decrypted.value = base64ToText(r.plaintext);
          decrypted.closest('.field').hidden = false;
        }),
      },
      h('h2', {}, 'Decrypt'),
      field('Ciphertext (ncpkms:v<N>:…)', ciphertextIn),
      ctxField('pg-decrypt-context'),
      h('button', { type: 'submit', id: 'pg-decrypt' }, 'Decrypt'),
      h('div', { class: 'field', hidden: true }, h('label', { for: 'pg-decrypted' }, 'Decrypted text'), decrypted))) : null,
    canSign ? h('div', { class: 'grid2' },
      h('form', {
        id: 'pg-sign-form', class: 'card',
        onsubmit: (ev) => run(ev, async () => {
          const r = await kms.sign(tag, textToBase64(message.value));
          signatureOut.value = r.signature;
          verifySig.value = r.signature;
          verifyMessage.value = message.value;
          signatureOut.closest('.field').hidden = false;
        }),
      },
      h('h2', {}, 'Sign'),
      field('Message', message),
      h('button', { type: 'submit', id: 'pg-sign' }, 'Sign'),
      h('div', { class: 'field', hidden: true }, h('label', { for: 'pg-signature' }, 'Signature'), signatureOut,
        copyButton('Copy signature', () => signatureOut.value))),
      h('form', {
        id: 'pg-verify-form', class: 'card',
        onsubmit: (ev) => run(ev, async () => {
          verifyResult.value = '';
          const r = await kms.verify(tag, textToBase64(verifyMessage.value), verifySig.value.trim());
          const valid = r.valid === true || r.valid === 'true';
          verifyResult.value = valid ? 'Valid: the signature matches the message.' : 'Not valid: the signature does not match the message.';
          verifyResult.className = `output ${valid ? 'ok' : 'bad'}`;
          verifyResult.closest('.field').hidden = false;
        }),
      },
      h('h2', {}, 'Verify'),
      field('Message', verifyMessage),
      field('Signature (ncpkms:v<N>:…)', verifySig),
      h('button', { type: 'submit', id: 'pg-verify' }, 'Verify'),
      h('div', { class: 'field', hidden: true }, h('label', { for: 'pg-verify-result' }, 'Result'), verifyResult))) : null);
}
