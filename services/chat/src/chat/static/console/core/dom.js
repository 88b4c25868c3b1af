/* DOM helpers: a builder that only ever sets text (server text never becomes markup),
 * show/hide, and the error banner under the top bar. */
import { t } from './i18n.js';

export function $(id) { return document.getElementById(id); }

// Builds an element; string children become text nodes, so data can never become markup.
// props: className, text, testid, i18n (a key: text now, relabelled on a new locale),
// data {k: v}, attrs {k: v}, on {event: fn}
export function h(tag, props, children) {
  var node = document.createElement(tag);
  props = props || {};
  if (props.className) node.className = props.className;
  if (props.text != null) node.textContent = String(props.text);
  if (props.testid) node.setAttribute('data-testid', props.testid);
  if (props.i18n) { node.setAttribute('data-i18n', props.i18n); node.textContent = t(props.i18n); }
  if (props.data) {
    Object.keys(props.data).forEach(function (k) {
      if (props.data[k] != null) node.setAttribute('data-' + k, String(props.data[k]));
    });
  }
  if (props.attrs) {
    Object.keys(props.attrs).forEach(function (k) {
      if (props.attrs[k] != null && props.attrs[k] !== false) node.setAttribute(k, String(props.attrs[k]));
    });
  }
  if (props.on) {
    Object.keys(props.on).forEach(function (k) { node.addEventListener(k, props.on[k]); });
  }
  (children || []).forEach(function (c) {
    if (c == null) return;
    node.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  });
  return node;
}

export function show(node, visible) { if (node) node.hidden = !visible; }

export function clear(node) { while (node && node.firstChild) node.removeChild(node.firstChild); }

// A message for 8 s in the banner under the top bar (#banner).
var bannerTimer = null;
export function banner(text) {
  var node = $('banner');
  node.textContent = text;
  show(node, true);
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(function () { show(node, false); }, 8000);
}
