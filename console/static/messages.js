// messages.js: the alert region (errors, in words, never silent) and the
// notice region (what an action did).

import { ApiError } from './api.js';

const main = document.getElementById('main');
const alertBox = document.getElementById('alert');
const alertText = document.getElementById('alert-text');
const notice = document.getElementById('notice');

/** showError shows err in words in the alert region; never silent. */
export function showError(err, context) {
  let text;
  if (err instanceof ApiError) {
    text = err.describe();
  } else {
    text = err && err.message ? err.message : String(err);
  }
  alertText.textContent = context ? `${context}: ${text}` : text;
  alertBox.hidden = false;
  if (err && !(err instanceof ApiError)) {
    console.error(err);
  }
}

export function showNotice(text) {
  notice.textContent = text;
  notice.hidden = !text;
}

export function clearMessages() {
  alertBox.hidden = true;
  alertText.textContent = '';
  showNotice('');
}

document.getElementById('alert-close').addEventListener('click', () => {
  alertBox.hidden = true;
  main.focus();
});
