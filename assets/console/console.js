// Vouch console: reveal a quarantined image on an explicit click (the server logs it), and
// keyboard shortcuts for the review queue. No framework; served from the same origin only.
'use strict';

const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? '';

async function reveal(button) {
  const item = button.closest('.review-item');
  const img = item?.querySelector('img.preview');
  if (!img || img.classList.contains('revealed')) return;
  button.disabled = true;
  button.textContent = 'Revealing…';
  const res = await fetch(img.dataset.reveal, { method: 'POST', headers: { 'x-csrf-token': csrf }, credentials: 'same-origin' });
  if (!res.ok) {
    button.disabled = false;
    button.textContent = `Reveal failed (${res.status})`;
    return;
  }
  img.src = URL.createObjectURL(await res.blob());
  img.classList.add('revealed');
  img.alt = 'Revealed image';
  button.textContent = 'Revealed (logged)';
}

document.addEventListener('click', (event) => {
  const button = event.target.closest?.('button.reveal');
  if (button) reveal(button);
  const submit = event.target.closest?.('form.review-form button[type="submit"]');
  if (submit) delete submit.form.dataset.pending;
});

const items = () => [...document.querySelectorAll('.review-item')];
let current = 0;
function focusItem(index) {
  const list = items();
  if (list.length === 0) return;
  current = Math.max(0, Math.min(list.length - 1, index));
  list.forEach((el, i) => el.classList.toggle('current', i === current));
  list[current].focus();
  list[current].scrollIntoView({ block: 'nearest' });
}

// Clicking or tabbing into an item makes it the one the keys act on.
document.addEventListener('focusin', (event) => {
  const item = event.target.closest?.('.review-item');
  const index = item ? items().indexOf(item) : -1;
  if (index >= 0 && index !== current) {
    current = index;
    items().forEach((el, i) => el.classList.toggle('current', i === current));
  }
});

const HELP = 'j / k: next / previous item\nr: reveal the image (logged)\nc: confirm (needs a reason)\no: overturn (pick the label, give a reason)\n/: search verdicts\n?: this help';

document.addEventListener('keydown', (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const typing = event.target.closest?.('input, select, textarea');
  if (typing) return;
  const item = items()[current];
  const submit = (action) => {
    const form = item?.querySelector('form.review-form');
    const reason = form?.querySelector('input[name="reason"]');
    if (!form || !reason) return;
    if (!reason.value.trim()) {
      reason.focus();
      reason.placeholder = `give a reason, then press Enter to ${action}`;
      form.dataset.pending = action;
      return;
    }
    form.querySelector(`button[value="${action}"]`).click();
  };
  switch (event.key) {
    case 'j': focusItem(current + 1); break;
    case 'k': focusItem(current - 1); break;
    case 'r': { const b = item?.querySelector('button.reveal'); if (b) reveal(b); break; }
    case 'c': submit('confirm'); break;
    case 'o': submit('overturn'); break;
    case '/': { const s = document.getElementById('search-hash'); if (s) s.focus(); else location.href = '/console/verdicts'; break; }
    case '?': alert(HELP); break;
    default: return;
  }
  // Handled: the key must not also land in the field a shortcut just focused.
  event.preventDefault();
});

// Enter in a reason field sends the action its shortcut asked for (`o`: overturn), else confirm.
// Clicking a button sends that button's action, whatever a shortcut asked for before.
document.addEventListener('keydown', (event) => {
  if (event.key !== 'Enter') return;
  const reason = event.target.closest?.('form.review-form input[name="reason"]');
  if (!reason) return;
  event.preventDefault();
  const form = reason.form;
  const action = form.dataset.pending ?? 'confirm';
  delete form.dataset.pending;
  form.querySelector(`button[value="${action}"]`).click();
});

if (items().length) focusItem(0);
