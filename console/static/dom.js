// dom.js: small helpers to build the page without innerHTML (so no text from
// the API is ever parsed as HTML) and to format values.

/**
 * h creates an element. props: "class", "text", on<Event> listeners,
 * boolean and string attributes; children: nodes, strings, arrays, or
 * null/false (skipped).
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) {
      continue;
    }
    if (k === 'class') {
      el.className = v;
    } else if (k === 'text') {
      el.textContent = v;
    } else if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === 'value') {
      el.value = v;
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) {
      continue;
    }
    if (Array.isArray(c)) {
      append(el, c);
    } else if (c instanceof Node) {
      el.appendChild(c);
    } else {
      el.appendChild(document.createTextNode(String(c)));
    }
  }
}

function pad(n) {
  return String(n).padStart(2, '0');
}

/** fmtDate formats Unix milliseconds as local "YYYY-MM-DD HH:MM:SS". */
export function fmtDate(ms) {
  if (ms === null || ms === undefined || ms === '') {
    return '—';
  }
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) {
    return String(ms);
  }
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** countdownText says how long until destroyDate (Unix ms). */
export function countdownText(destroyDate, now = Date.now()) {
  let s = Math.floor((destroyDate - now) / 1000);
  if (s <= 0) {
    return 'destruction due: the server destroys it at its next check';
  }
  const hours = Math.floor(s / 3600);
  s -= hours * 3600;
  const minutes = Math.floor(s / 60);
  s -= minutes * 60;
  return `destroyed in ${hours}h ${minutes}m ${s}s`;
}

/** countdown is a live "destroyed in …" element; tickCountdowns updates it. */
export function countdown(destroyDate) {
  return h('span', { class: 'countdown', 'data-destroy-date': destroyDate, title: `at ${fmtDate(destroyDate)}` },
    countdownText(destroyDate));
}

/**
 * startCountdowns keeps every countdown on the page exact: each tick is
 * timed for the moment the next countdown's whole second changes, so the
 * text changes every second on the second, never a second late.
 */
export function startCountdowns() {
  const schedule = () => {
    const now = Date.now();
    let delay = 1000;
    for (const el of document.querySelectorAll('[data-destroy-date]')) {
      const left = Number(el.getAttribute('data-destroy-date')) - now;
      if (left > 0) {
        delay = Math.min(delay, (left % 1000) + 5);
      }
    }
    setTimeout(() => {
      tickCountdowns();
      schedule();
    }, delay);
  };
  schedule();
}

export function tickCountdowns() {
  const now = Date.now();
  for (const el of document.querySelectorAll('[data-destroy-date]')) {
    const text = countdownText(Number(el.getAttribute('data-destroy-date')), now);
    if (el.textContent !== text) {
      el.textContent = text;
    }
  }
}

const stateWords = {
  ENABLE: 'enabled',
  DISABLE: 'disabled',
  REVOKE: 'pending deletion',
};

/** stateBadge shows a key or version status in words and with its code. */
export function stateBadge(status) {
  return h('span', { class: `badge state-${String(status).toLowerCase()}`, title: status },
    stateWords[status] || status);
}

/** copyButton copies the text of getText() to the clipboard. */
export function copyButton(label, getText) {
  const b = h('button', {
    type: 'button',
    class: 'secondary small',
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(getText());
        b.textContent = 'Copied';
      } catch {
        b.textContent = 'Copy failed: select and copy by hand';
      }
      setTimeout(() => { b.textContent = label; }, 2000);
    },
  }, label);
  return b;
}

/** field is a label and an input (or select/textarea) tied together by id. */
export function field(label, input, help) {
  const helpId = help ? `${input.id}-help` : null;
  if (helpId) {
    input.setAttribute('aria-describedby', helpId);
  }
  return h('div', { class: 'field' },
    h('label', { for: input.id }, label),
    input,
    help ? h('small', { id: helpId, class: 'muted' }, help) : null);
}
