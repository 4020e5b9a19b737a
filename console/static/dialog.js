// dialog.js: the confirmation dialog of destructive actions. When a name is
// given, the confirm button is enabled only once it is typed exactly; Escape
// and Cancel close the dialog without doing anything.

import { h } from './dom.js';

const dialog = document.getElementById('danger-dialog');
const form = document.getElementById('danger-form');
const title = document.getElementById('danger-title');
const body = document.getElementById('danger-body');
const nameEl = document.getElementById('danger-name');
const typed = document.getElementById('danger-typed');
const input = document.getElementById('danger-input');
const confirmButton = document.getElementById('danger-confirm');
const cancelButton = document.getElementById('danger-cancel');

let expected = '';
let resolveOpen = null;

function finish(ok) {
  const resolve = resolveOpen;
  resolveOpen = null;
  if (dialog.open) {
    dialog.close();
  }
  if (resolve) {
    resolve(ok);
  }
}

input.addEventListener('input', () => {
  confirmButton.disabled = input.value !== expected;
});
form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (input.value === expected) {
    finish(true);
  }
});
cancelButton.addEventListener('click', () => finish(false));
// The close event is queued: when it arrives the dialog may already be open
// again for another action, which this late event must not cancel.
dialog.addEventListener('close', () => {
  if (!dialog.open) {
    finish(false);
  }
});
dialog.addEventListener('cancel', () => finish(false)); // Escape

/**
 * openDangerDialog shows the dialog and resolves true when the user
 * confirmed (after typing name, when name is not empty), false when they
 * cancelled.
 */
export function openDangerDialog({ title: t, paragraphs, name, confirmLabel }) {
  if (resolveOpen) {
    finish(false);
  }
  expected = name || '';
  title.textContent = t;
  body.replaceChildren(...paragraphs.map((p) => h('p', {}, p)));
  nameEl.textContent = expected;
  typed.hidden = !expected;
  input.value = '';
  confirmButton.disabled = expected !== '';
  confirmButton.textContent = confirmLabel;
  return new Promise((resolve) => {
    resolveOpen = resolve;
    dialog.showModal();
    (expected ? input : cancelButton).focus();
  });
}
