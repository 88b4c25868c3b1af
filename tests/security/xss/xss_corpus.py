"""The XSS payload corpus: Beckon's own payloads (payloads/ours.txt, by context) and a subset of a
public collection (payloads/payloadsallthethings.txt; source and licence in payloads/README.md).

Every payload has a number. Ours call `window.__xssHit(n)` where the file says XSSMARK; the
public ones call alert/prompt/confirm, which the browser battery's init script (`INIT_SCRIPT`)
replaces with recorders, so an execution names what ran either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

PAYLOADS_DIR = Path(__file__).resolve().parent / "payloads"
SOURCES = ("ours", "payloadsallthethings")
MARK = "XSSMARK"


@dataclass(frozen=True)
class Payload:
    number: int
    source: str
    text: str


@cache
def corpus() -> tuple[Payload, ...]:
    """Every payload once, numbered from 1 in file order (ours first)."""
    seen: set[str] = set()
    found: list[Payload] = []
    for source in SOURCES:
        for line in (PAYLOADS_DIR / f"{source}.txt").read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("# "):
                continue
            number = len(found) + 1
            text = line.replace(MARK, f"__xssHit({number})")
            if line in seen:
                continue
            seen.add(line)
            found.append(Payload(number, source, text))
    return tuple(found)


# Runs before any of the console's scripts: records calls of the marker and of alert & co.,
# CSP violations, and dialogs are also caught by the test's `dialog` handler.
INIT_SCRIPT = """
(() => {
  window.__xss = [];
  window.__xssCsp = [];
  const hit = (what) => { window.__xss.push(String(what)); };
  window.__xssHit = (n) => hit('payload ' + n);
  for (const name of ['alert', 'prompt', 'confirm', 'print']) {
    window[name] = (value) => hit(name + '(' + value + ')');
  }
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__xssCsp.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || ''));
  });
})();
"""

# What a payload would leave in the DOM if it became markup: returns a list of findings.
DOM_SCAN = """
() => {
  const found = [];
  const scheme = /^\\s*(javascript|vbscript|data):/i;
  const urlAttrs = ['href', 'src', 'action', 'formaction', 'xlink:href', 'data', 'poster',
                    'background', 'srcdoc'];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      const tag = el.tagName.toLowerCase();
      if (['iframe', 'object', 'embed', 'base', 'meta', 'frame', 'frameset', 'applet',
           'math', 'template', 'noscript', 'xmp', 'listing', 'marquee', 'isindex',
           'keygen'].includes(tag) && el.closest('body')) {
        found.push('<' + tag + '>');
      }
      const own = el.type === 'module' && el.src && new URL(el.src).origin === location.origin;
      if (tag === 'script' && !own) {
        found.push('<script>' + (el.src || el.textContent.slice(0, 60)));
      }
      if (tag === 'style' && el.closest('body')) found.push('<style> in body');
      if (tag === 'svg' && el.querySelector('script, foreignObject, a, animate, set, use')) {
        found.push('<svg> with active content');
      }
      for (const attr of el.attributes) {
        const name = attr.name.toLowerCase();
        if (name.startsWith('on')) {
          found.push('<' + tag + ' ' + name + '=' + attr.value.slice(0, 40) + '>');
        }
        if (urlAttrs.includes(name) && scheme.test(attr.value)) {
          found.push('<' + tag + ' ' + name + '=' + attr.value.slice(0, 40) + '>');
        }
        if (name === 'style' && /expression\\(|javascript:|url\\(/i.test(attr.value)) {
          found.push('<' + tag + ' style=' + attr.value.slice(0, 40) + '>');
        }
      }
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return found;
}
"""
