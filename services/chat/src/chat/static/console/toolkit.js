/* Beckon console feature: the agent's toolkit.
 *
 * - canned replies: "/" + shortcut in the composer opens a picker (↑/↓, Enter); the chosen
 *   reply comes back from the server with the conversation's variables filled and goes into
 *   the composer, to be edited before sending. A panel manages them (own set for everyone;
 *   team and site-wide sets for admins).
 * - in the conversation header: tags (objections first), transfer (agent or team, with a
 *   note that becomes a private note), mark as lead (how far validated, a note).
 * - the Answers view: tagged conversations as the visitor's question and the agents' answer,
 *   searchable by tag and text; an answer can be saved as a canned reply.
 * - alerts: a sound (Web Audio) and browser notifications for new waiting chats and visitor
 *   messages out of focus; per-agent settings (POST /me/preferences).
 * Server text goes into the page with textContent only (h).
 */
import { insertText } from './chats/composer.js';
import { showConversation } from './chats/conversation.js';
import { applyConversation } from './chats/lists.js';
import { state } from './chats/state.js';
import { api } from './core/api.js';
import { $, banner, clear, h } from './core/dom.js';
import { emit, on } from './core/events.js';
import { fmt } from './core/format.js';
import { i18n, t } from './core/i18n.js';
import { me } from './core/me.js';
import { views } from './core/views.js';

var LEVELS = ['contact_only', 'interested', 'qualified', 'ready_to_buy'];

function enc(id) { return encodeURIComponent(String(id)); }
function convId() { return state.openId; }
function tagLabel(tag) {
  var key = 'tag.' + tag.tag;
  return i18n.has(key) ? t(key) : (tag.label || tag.tag);
}
function teamName(team) {
  var found = (me.teams || []).find(function (x) { return x.team === team; });
  return found ? found.name : team;
}

// ---------------------------------------------------------------- popovers

var openPopover = null;

function closePopover() {
  if (openPopover) openPopover.remove();
  openPopover = null;
}

function popover(anchor, testid, children) {
  closePopover();
  var box = h('div', { className: 'tk-popover', testid: testid, attrs: { role: 'dialog' } }, children);
  anchor.parentNode.appendChild(box);
  openPopover = box;
  var first = box.querySelector('input, select, textarea, button');
  if (first) first.focus();
  return box;
}

document.addEventListener('mousedown', function (ev) {
  if (openPopover && !openPopover.contains(ev.target) && !ev.target.closest('.tk-tool')) closePopover();
});
on('escape', function () { closePopover(); closePicker(); closeCannedPanel(); });
on('reset', function () { closePopover(); closePicker(); closeCannedPanel(); });

// ---------------------------------------------------------------- canned picker

var picker = { node: null, items: [], index: 0, query: null, request: 0 };

function pickerQuery() {
  var input = $('reply-input');
  if (!input || state.mode === 'note') return null;
  var m = /^\/([a-z0-9_-]*)$/i.exec(input.value);
  return m ? m[1].toLowerCase() : null;
}

function closePicker() {
  if (picker.node) picker.node.remove();
  picker.node = null;
  picker.items = [];
  picker.query = null;
}

function renderPicker() {
  if (!picker.node) {
    picker.node = h('div', { className: 'tk-picker', testid: 'canned-picker', attrs: { role: 'listbox' } });
    $('composer').insertBefore(picker.node, $('composer').firstChild);
  }
  var node = picker.node;
  clear(node);
  if (!picker.items.length) {
    node.appendChild(h('p', { className: 'tk-muted', text: t('canned.none') }));
    return;
  }
  picker.items.forEach(function (reply, i) {
    var item = h('div', {
      className: 'tk-pick' + (i === picker.index ? ' is-active' : ''),
      testid: 'canned-item',
      data: { shortcut: reply.shortcut, id: reply.id },
      attrs: { role: 'option', 'aria-selected': i === picker.index ? 'true' : 'false' },
      on: {
        mousedown: function (ev) { ev.preventDefault(); choose(reply); },
      },
    }, [
      h('span', { className: 'tk-shortcut', text: '/' + reply.shortcut }),
      h('span', { className: 'tk-scope', text: scopeLabel(reply) }),
      h('span', { className: 'tk-pick-text', text: reply.text }),
    ]);
    node.appendChild(item);
  });
  node.appendChild(h('p', { className: 'tk-hint', text: t('canned.hint') }));
  var active = node.querySelector('.is-active');
  if (active && active.scrollIntoView) active.scrollIntoView({ block: 'nearest' });
}

function scopeLabel(reply) {
  if (reply.scope === 'team') return t('canned.scope.team', { team: teamName(reply.team) });
  return t('canned.scope.' + reply.scope);
}

function updatePicker() {
  var q = pickerQuery();
  if (q === null) { closePicker(); return; }
  if (q === picker.query && picker.node) return;
  picker.query = q;
  var request = ++picker.request;
  api('GET', '/canned?q=' + encodeURIComponent(q)).then(function (data) {
    if (request !== picker.request || pickerQuery() === null) return;
    picker.items = (data && data.replies) || [];
    picker.index = 0;
    renderPicker();
  }).catch(function () { /* the picker just stays as it was */ });
}

function choose(reply) {
  var id = convId();
  closePicker();
  if (!id) return;
  api('POST', '/conversations/' + enc(id) + '/fill', { text: reply.text }).then(function (data) {
    if (convId() !== id) return;
    insertText((data && data.text) || '');
  }).catch(function (e) {
    if (e.status !== 401) banner(t('canned.fillFailed', { error: e.message }));
  });
}

function onComposerKey(ev) {
  if (!picker.node || ev.target.id !== 'reply-input') return;
  var stop = function () { ev.preventDefault(); ev.stopImmediatePropagation(); };
  if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
    stop();
    if (!picker.items.length) return;
    var n = picker.items.length;
    picker.index = (picker.index + (ev.key === 'ArrowDown' ? 1 : -1) + n) % n;
    renderPicker();
  } else if ((ev.key === 'Enter' || ev.key === 'Tab') && !ev.shiftKey) {
    if (!picker.items.length) { if (ev.key === 'Enter') stop(); return; }
    stop();
    choose(picker.items[picker.index]);
  } else if (ev.key === 'Escape') {
    stop();
    closePicker();
  }
}

// ---------------------------------------------------------------- canned management

var panel = null;

function closeCannedPanel() {
  if (panel) panel.remove();
  panel = null;
}

function openCannedPanel(prefill) {
  closeCannedPanel();
  var admin = me.agent && me.agent.role === 'admin';
  var list = h('ul', { className: 'tk-canned-list', testid: 'canned-list' });
  var error = h('p', { className: 'form-error', testid: 'canned-error', attrs: { role: 'alert', hidden: true } });
  var shortcut = h('input', { testid: 'canned-shortcut', attrs: { type: 'text', maxlength: 33, placeholder: '/thanks' } });
  var text = h('textarea', { testid: 'canned-text', attrs: { rows: 4, maxlength: 2000 } });
  text.value = (prefill && prefill.text) || '';
  var scope = h('select', { testid: 'canned-scope' }, [
    h('option', { text: t('canned.scope.personal'), attrs: { value: 'personal' } }),
  ]);
  var team = h('select', { testid: 'canned-team', attrs: { hidden: true } });
  if (admin) {
    scope.appendChild(h('option', { text: t('canned.team'), attrs: { value: 'team' } }));
    scope.appendChild(h('option', { text: t('canned.scope.site'), attrs: { value: 'site' } }));
    (me.teams || []).forEach(function (x) { team.appendChild(h('option', { text: x.name, attrs: { value: x.team } })); });
    scope.addEventListener('change', function () { team.hidden = scope.value !== 'team'; });
  }
  var editing = null;  // the reply being edited
  var save = h('button', { className: 'btn btn-primary', testid: 'canned-save', text: t('canned.add'), attrs: { type: 'submit' } });
  var cancel = h('button', { className: 'btn btn-ghost', text: t('canned.cancelEdit'), attrs: { type: 'button', hidden: true } });
  var form = h('form', { className: 'tk-canned-form', testid: 'canned-form' }, [
    h('label', { className: 'field' }, [h('span', { text: t('canned.shortcut') }), shortcut]),
    h('label', { className: 'field' }, [h('span', { text: t('canned.text') }), text]),
    h('p', { className: 'tk-muted', text: t('canned.variables', { list: '{visitor_name} {product} {cart_value} {agent_name} {agent_first_name}' }) }),
    h('div', { className: 'tk-row' }, [
      admin ? h('label', { className: 'field tk-inline' }, [h('span', { text: t('canned.scope') }), scope, team]) : null,
      save,
      cancel,
    ]),
    error,
  ]);

  function fail(e) {
    error.textContent = t('canned.failed', { error: e.detail || e.message });
    error.hidden = false;
  }

  function resetForm() {
    editing = null;
    shortcut.value = '';
    text.value = '';
    save.textContent = t('canned.add');
    cancel.hidden = true;
    scope.disabled = false;
  }
  cancel.addEventListener('click', resetForm);

  function load() {
    return api('GET', '/canned?manage=true').then(function (data) {
      clear(list);
      var replies = (data && data.replies) || [];
      if (!replies.length) list.appendChild(h('li', { className: 'tk-muted', text: t('canned.empty') }));
      replies.forEach(function (reply) {
        var actions = [];
        if (reply.editable) {
          actions.push(h('button', {
            className: 'btn btn-small btn-ghost', testid: 'canned-edit', text: t('canned.edit'), attrs: { type: 'button' },
            on: { click: function () {
              editing = reply;
              shortcut.value = reply.shortcut;
              text.value = reply.text;
              save.textContent = t('canned.save');
              cancel.hidden = false;
              scope.disabled = true;
              text.focus();
            } },
          }));
          actions.push(h('button', {
            className: 'btn btn-small btn-danger-ghost', testid: 'canned-delete', text: t('canned.delete'), attrs: { type: 'button' },
            on: { click: function () {
              api('DELETE', '/canned/' + enc(reply.id)).then(load).catch(fail);
            } },
          }));
        }
        list.appendChild(h('li', { className: 'tk-canned', testid: 'canned-row', data: { shortcut: reply.shortcut, scope: reply.scope } }, [
          h('div', { className: 'tk-row' }, [
            h('span', { className: 'tk-shortcut', text: '/' + reply.shortcut }),
            h('span', { className: 'tk-scope', text: scopeLabel(reply) }),
            h('span', { className: 'tk-spacer' }),
          ].concat(actions)),
          h('div', { className: 'tk-canned-text', text: reply.text }),
        ]));
      });
    }).catch(fail);
  }

  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    error.hidden = true;
    var request = editing
      ? api('PATCH', '/canned/' + enc(editing.id), { shortcut: shortcut.value, text: text.value })
      : api('POST', '/canned', {
        shortcut: shortcut.value,
        text: text.value,
        scope: scope.value,
        team: scope.value === 'team' ? team.value : null,
      });
    request.then(function () { resetForm(); return load(); }).catch(fail);
  });

  panel = h('div', { className: 'overlay', testid: 'canned-panel', attrs: { role: 'dialog', 'aria-modal': 'true' } }, [
    h('div', { className: 'overlay-card tk-canned-card' }, [
      h('div', { className: 'tk-row' }, [
        h('h2', { text: t('canned.title') }),
        h('span', { className: 'tk-spacer' }),
        h('button', { className: 'btn btn-ghost', testid: 'canned-close', text: t('common.close'), attrs: { type: 'button' }, on: { click: closeCannedPanel } }),
      ]),
      form,
      list,
    ]),
  ]);
  panel.addEventListener('mousedown', function (ev) { if (ev.target === panel) closeCannedPanel(); });
  document.body.appendChild(panel);
  load();
  (prefill ? shortcut : text).focus();
}

// ---------------------------------------------------------------- conversation tools

// leadSeq counts what set `lead`: an answer to a read started before a save must not undo it
var tools = { conv: null, lead: null, leadFor: null, leadSeq: 0 };

function renderTools() {
  var box = $('conv-tools');
  if (!box) return;
  clear(box);
  var c = tools.conv;
  if (!c) return;
  var live = c.status === 'open' || c.status === 'queued';
  var chips = h('span', { className: 'tk-chips', testid: 'conversation-tags' }, (c.tags || []).map(function (tag) {
    return h('span', { className: 'tk-chip', testid: 'conversation-tag', data: { tag: tag }, text: i18n.has('tag.' + tag) ? t('tag.' + tag) : tag });
  }));
  box.appendChild(chips);
  box.appendChild(h('button', { className: 'btn btn-small tk-tool', testid: 'tags-open', text: t('tools.tags'), attrs: { type: 'button' }, on: { click: openTags } }));
  if (live) {
    box.appendChild(h('button', { className: 'btn btn-small tk-tool', testid: 'transfer-open', text: t('tools.transfer'), attrs: { type: 'button' }, on: { click: openTransfer } }));
  }
  var lead = tools.leadFor === c.id ? tools.lead : null;
  box.appendChild(h('button', {
    className: 'btn btn-small tk-tool' + (lead ? ' is-lead' : ''),
    testid: 'lead-open',
    data: { validation: lead ? lead.validation : null },
    text: lead ? t('tools.leadMarked', { level: t('lead.' + lead.validation) }) : t('tools.lead'),
    attrs: { type: 'button' },
    on: { click: openLead },
  }));
}

function setConv(conv) {
  var changed = !tools.conv || !conv || tools.conv.id !== conv.id;
  tools.conv = conv;
  if (changed) closePopover();
  if (conv && changed) {
    tools.lead = null;
    tools.leadFor = null;
    var id = conv.id;
    var seq = ++tools.leadSeq;
    api('GET', '/conversations/' + enc(id) + '/lead').then(function (data) {
      if (!tools.conv || tools.conv.id !== id || tools.leadSeq !== seq) return;
      tools.lead = data && data.lead;
      tools.leadFor = id;
      renderTools();
    }).catch(function () { /* the button just says "Mark as lead" */ });
  }
  renderTools();
}

on('conversation:open', setConv);
on('conversation:update', setConv);
on('conversation:none', function () { setConv(null); closePicker(); });
on('locale', renderTools);

function openTags(ev) {
  var c = tools.conv;
  if (!c) return;
  var anchor = ev.currentTarget;
  var chosen = new Set(c.tags || []);
  var error = h('p', { className: 'form-error', attrs: { role: 'alert', hidden: true } });
  var groups = h('div', { className: 'tk-tag-groups' }, [h('p', { className: 'tk-muted', text: t('common.loading') })]);
  var fresh = h('input', { testid: 'tag-new', attrs: { type: 'text', maxlength: 40, placeholder: t('tags.new') } });
  var saveBtn = h('button', { className: 'btn btn-primary btn-small', testid: 'tags-save', text: t('tags.save'), attrs: { type: 'submit' } });
  var form = h('form', {}, [groups, h('div', { className: 'tk-row' }, [fresh, saveBtn]), error]);
  popover(anchor, 'tags-popover', [form]);

  function option(tag) {
    var box = h('input', { testid: 'tag-option', data: { tag: tag.tag }, attrs: { type: 'checkbox', value: tag.tag } });
    box.checked = chosen.has(tag.tag);
    box.addEventListener('change', function () { if (box.checked) chosen.add(tag.tag); else chosen.delete(tag.tag); });
    return h('label', { className: 'tk-tag-option' + (tag.kind === 'objection' ? ' is-objection' : '') }, [box, ' ', tagLabel(tag)]);
  }

  api('GET', '/tags').then(function (data) {
    var tags = (data && data.tags) || [];
    clear(groups);
    var objections = tags.filter(function (x) { return x.kind === 'objection'; });
    var topics = tags.filter(function (x) { return x.kind !== 'objection'; });
    (c.tags || []).forEach(function (tag) {
      if (!tags.some(function (x) { return x.tag === tag; })) topics.push({ tag: tag, label: tag, kind: 'topic' });
    });
    groups.appendChild(h('h3', { text: t('tags.objections') }));
    groups.appendChild(h('div', { className: 'tk-tag-list', testid: 'objection-tags' }, objections.map(option)));
    if (topics.length) {
      groups.appendChild(h('h3', { text: t('tags.topics') }));
      groups.appendChild(h('div', { className: 'tk-tag-list' }, topics.map(option)));
    }
  }).catch(function (e) { error.textContent = e.message; error.hidden = false; });

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var extra = fresh.value.trim().toLowerCase();
    var tags = Array.from(chosen);
    if (extra && tags.indexOf(extra) < 0) tags.push(extra);
    saveBtn.disabled = true;
    api('POST', '/conversations/' + enc(c.id) + '/tags', { tags: tags }).then(function (data) {
      closePopover();
      if (data && data.conversation) applyConversation(data.conversation);
    }).catch(function (err) {
      error.textContent = t('tags.failed', { error: err.detail || err.message });
      error.hidden = false;
      saveBtn.disabled = false;
    });
  });
}

function openTransfer(ev) {
  var c = tools.conv;
  if (!c) return;
  var anchor = ev.currentTarget;
  var target = null;  // {agent_id} or {team}
  var agents = h('div', { className: 'tk-targets', testid: 'transfer-agents' }, [h('p', { className: 'tk-muted', text: t('common.loading') })]);
  var teams = h('div', { className: 'tk-targets', testid: 'transfer-teams' });
  var note = h('textarea', { testid: 'transfer-note', attrs: { rows: 2, maxlength: 1000, placeholder: t('transfer.note') } });
  var error = h('p', { className: 'form-error', testid: 'transfer-error', attrs: { role: 'alert', hidden: true } });
  var submit = h('button', { className: 'btn btn-primary btn-small', testid: 'transfer-submit', text: t('transfer.submit'), attrs: { type: 'submit' } });
  var form = h('form', {}, [
    h('h3', { text: t('transfer.agents') }), agents,
    h('h3', { text: t('transfer.teams') }), teams,
    note, h('div', { className: 'tk-row' }, [submit]), error,
  ]);
  popover(anchor, 'transfer-popover', [h('h2', { text: t('transfer.title') }), form]);

  function pick(node, chosen) {
    form.querySelectorAll('.tk-target').forEach(function (n) { n.classList.remove('is-chosen'); n.setAttribute('aria-pressed', 'false'); });
    node.classList.add('is-chosen');
    node.setAttribute('aria-pressed', 'true');
    target = chosen;
  }

  api('GET', '/transfer-targets').then(function (data) {
    clear(agents);
    var others = ((data && data.agents) || []).filter(function (a) { return !a.me && a.id !== c.agent_id; });
    if (!others.length) agents.appendChild(h('p', { className: 'tk-muted', text: t('transfer.noAgents') }));
    others.forEach(function (a) {
      var full = a.open_chats >= a.max_chats;
      var node = h('button', {
        className: 'tk-target', testid: 'transfer-agent', data: { 'agent-id': a.id },
        attrs: { type: 'button', disabled: full, 'aria-pressed': 'false' },
      }, [
        h('span', { className: 'tk-target-name', text: a.name }),
        h('span', { className: 'tk-muted', text: t('transfer.load', { open: a.open_chats, max: a.max_chats }) + ' · ' + a.teams.map(teamName).join(', ') }),
      ]);
      node.addEventListener('click', function () { pick(node, { agent_id: a.id }); });
      agents.appendChild(node);
    });
    ((data && data.teams) || []).forEach(function (x) {
      var node = h('button', {
        className: 'tk-target', testid: 'transfer-team', data: { team: x.team },
        attrs: { type: 'button', 'aria-pressed': 'false' },
      }, [
        h('span', { className: 'tk-target-name', text: x.name }),
        h('span', { className: 'tk-muted', text: t('transfer.teamInfo', { online: x.online, queued: x.queued }) }),
      ]);
      node.addEventListener('click', function () { pick(node, { team: x.team }); });
      teams.appendChild(node);
    });
  }).catch(function (e) { error.textContent = e.message; error.hidden = false; });

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    if (!target) { error.textContent = t('transfer.pick'); error.hidden = false; return; }
    var body = Object.assign({}, target);
    if (note.value.trim()) body.note = note.value.trim();
    submit.disabled = true;
    api('POST', '/conversations/' + enc(c.id) + '/transfer', body).then(function (data) {
      closePopover();
      if (data && data.conversation) applyConversation(data.conversation);
    }).catch(function (err) {
      error.textContent = t('transfer.failed', { error: err.detail || err.message });
      error.hidden = false;
      submit.disabled = false;
    });
  });
}

function openLead(ev) {
  var c = tools.conv;
  if (!c) return;
  var current = tools.leadFor === c.id ? tools.lead : null;
  var select = h('select', { testid: 'lead-validation' }, LEVELS.map(function (level) {
    return h('option', { text: t('lead.' + level), attrs: { value: level } });
  }));
  select.value = current ? current.validation : 'interested';
  var note = h('textarea', { testid: 'lead-note', attrs: { rows: 2, maxlength: 1000 } });
  note.value = (current && current.note) || '';
  var status = h('p', { className: 'tk-muted', testid: 'lead-status', attrs: { role: 'status' } });
  if (current) status.textContent = t('lead.saved', { level: t('lead.' + current.validation) });
  var save = h('button', { className: 'btn btn-primary btn-small', testid: 'lead-save', text: t('lead.save'), attrs: { type: 'submit' } });
  var form = h('form', {}, [
    h('label', { className: 'field' }, [h('span', { text: t('lead.validation') }), select]),
    h('label', { className: 'field' }, [h('span', { text: t('lead.note') }), note]),
    h('div', { className: 'tk-row' }, [save]),
    status,
  ]);
  popover(ev.currentTarget, 'lead-popover', [h('h2', { text: t('lead.title') }), form]);
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    if (save.disabled) return;  // a double click saves once
    save.disabled = true;
    api('POST', '/conversations/' + enc(c.id) + '/lead', { validation: select.value, note: note.value }).then(function (data) {
      tools.leadSeq += 1;
      tools.lead = data.lead;
      tools.leadFor = c.id;
      status.textContent = t('lead.saved', { level: t('lead.' + data.lead.validation) });
      renderTools();
    }).catch(function (err) {
      status.textContent = t('lead.failed', { error: err.detail || err.message });
    }).then(function () { save.disabled = false; });
  });
}

// ---------------------------------------------------------------- Answers view

var answers = { built: false, tag: null, q: null, results: null, request: 0 };

function buildAnswers() {
  var root = views.container('answers');
  if (!root || answers.built) return;
  answers.built = true;
  answers.tag = h('select', { testid: 'answers-tag' }, [h('option', { text: t('answers.anyTag'), attrs: { value: '' } })]);
  answers.q = h('input', { testid: 'answers-q', attrs: { type: 'search', placeholder: t('answers.q'), maxlength: 200 } });
  answers.results = h('div', { className: 'tk-answers', testid: 'answers-results' });
  var form = h('form', { className: 'tk-answers-form' }, [
    h('label', { className: 'field tk-inline' }, [h('span', { text: t('answers.tag') }), answers.tag]),
    answers.q,
    h('button', { className: 'btn btn-primary', testid: 'answers-search', text: t('answers.search'), attrs: { type: 'submit' } }),
    h('button', { className: 'btn', testid: 'canned-manage-answers', text: t('canned.manage'), attrs: { type: 'button' }, on: { click: function () { openCannedPanel(null); } } }),
  ]);
  form.addEventListener('submit', function (ev) { ev.preventDefault(); searchAnswers(); });
  answers.tag.addEventListener('change', searchAnswers);
  root.appendChild(h('div', { className: 'tk-answers-view' }, [
    h('h2', { text: t('answers.title') }),
    h('p', { className: 'tk-muted', text: t('answers.intro') }),
    form,
    answers.results,
  ]));
}

function loadAnswerTags() {
  return api('GET', '/tags').then(function (data) {
    var keep = answers.tag.value;
    clear(answers.tag);
    answers.tag.appendChild(h('option', { text: t('answers.anyTag'), attrs: { value: '' } }));
    ((data && data.tags) || []).forEach(function (tag) {
      answers.tag.appendChild(h('option', { text: tagLabel(tag) + ' (' + tag.conversations + ')', attrs: { value: tag.tag } }));
    });
    answers.tag.value = keep;
  }).catch(function () { /* the select keeps "any tag" */ });
}

function searchAnswers() {
  var params = [];
  if (answers.tag.value) params.push('tag=' + encodeURIComponent(answers.tag.value));
  if (answers.q.value.trim()) params.push('q=' + encodeURIComponent(answers.q.value.trim()));
  var request = ++answers.request;
  answers.results.setAttribute('aria-busy', 'true');
  api('GET', '/answers' + (params.length ? '?' + params.join('&') : '')).then(function (data) {
    if (request !== answers.request) return;
    renderAnswers((data && data.answers) || []);
  }).catch(function (e) {
    if (request !== answers.request) return;
    clear(answers.results);
    answers.results.appendChild(h('p', { className: 'form-error', text: t('answers.failed', { error: e.message }) }));
  }).then(function () { answers.results.removeAttribute('aria-busy'); });
}

function renderAnswers(list) {
  var root = answers.results;
  clear(root);
  if (!list.length) {
    root.appendChild(h('p', { className: 'tk-muted', testid: 'answers-empty', text: t('answers.none') }));
    return;
  }
  list.forEach(function (item) {
    var pairs = item.pairs.map(function (pair) {
      return h('div', { className: 'tk-pair' }, [
        h('div', { className: 'tk-q' }, [h('span', { className: 'tk-label', text: t('answers.question') }), h('p', { testid: 'answer-question', text: pair.question })]),
        h('div', { className: 'tk-a' }, [
          h('span', { className: 'tk-label', text: t('answers.answer', { agent: pair.agent || t('answers.someone') }) }),
          h('p', { testid: 'answer-text', text: pair.answer }),
          h('button', {
            className: 'btn btn-small', testid: 'answer-save', text: t('answers.save'), attrs: { type: 'button' },
            on: { click: function () { openCannedPanel({ text: pair.answer }); } },
          }),
        ]),
      ]);
    });
    root.appendChild(h('article', { className: 'tk-answer', testid: 'answer-item', data: { 'conversation-id': item.conversation_id } }, [
      h('div', { className: 'tk-row' }, [
        h('span', { className: 'tk-chips' }, item.tags.map(function (tag) {
          return h('span', { className: 'tk-chip', text: i18n.has('tag.' + tag) ? t('tag.' + tag) : tag });
        })),
        h('span', { className: 'tk-spacer' }),
        h('span', { className: 'tk-muted', text: fmt.date(item.created_at) }),
        h('button', { className: 'btn btn-small btn-ghost', testid: 'answer-open', text: t('answers.open'), attrs: { type: 'button' }, on: { click: function () { showConversation(item.conversation_id); } } }),
      ]),
    ].concat(pairs)));
  });
}

views.register('answers', {
  label: 'nav.answers',
  onShow: function () {
    buildAnswers();
    loadAnswerTags();
    searchAnswers();
  },
});
on('locale', function () {
  var root = views.container('answers');
  if (!root || !answers.built) return;
  clear(root);
  answers.built = false;
  if (views.current === 'answers') { buildAnswers(); loadAnswerTags(); searchAnswers(); }
});

// ---------------------------------------------------------------- alerts

var alerts = { audio: null };

function settings() { return (me.agent && me.agent.settings) || {}; }

function saveSetting(key, value) {
  var body = { settings: {} };
  body.settings[key] = value;
  return api('POST', '/me/preferences', body).then(function (data) {
    if (data && data.agent) { me.agent = data.agent; emit('agent', data.agent); }
  });
}

function renderAlertSettings() {
  var box = $('alert-settings');
  if (!box || !me.agent) return;
  clear(box);
  var s = settings();
  var notif = h('input', { testid: 'setting-notifications', attrs: { type: 'checkbox' } });
  notif.checked = !!s.notifications;
  var sound = h('input', { testid: 'setting-sound', attrs: { type: 'checkbox' } });
  sound.checked = !!s.sound;
  var note = h('p', { className: 'tk-muted', testid: 'alerts-denied', text: t('alerts.denied'), attrs: { hidden: true } });
  notif.addEventListener('change', function () {
    var wanted = notif.checked;
    // asked on this click (a user gesture), as browsers require
    if (wanted && window.Notification && Notification.permission === 'default') {
      Notification.requestPermission().then(function (p) { note.hidden = p !== 'denied'; });
    } else if (wanted && window.Notification && Notification.permission === 'denied') {
      note.hidden = false;
    }
    saveSetting('notifications', wanted).catch(function (e) { banner(e.message); });
  });
  sound.addEventListener('change', function () {
    if (sound.checked) beep();  // also unlocks audio on this gesture
    saveSetting('sound', sound.checked).catch(function (e) { banner(e.message); });
  });
  box.appendChild(h('span', { className: 'tk-label', text: t('alerts.title') }));
  box.appendChild(h('label', { className: 'tk-check' }, [notif, ' ', t('alerts.notifications')]));
  box.appendChild(h('label', { className: 'tk-check' }, [sound, ' ', t('alerts.sound')]));
  box.appendChild(note);
}

function beep() {
  var Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return;
  try {
    if (!alerts.audio) alerts.audio = new Ctx();
    var ctx = alerts.audio;
    if (ctx.state === 'suspended') ctx.resume();
    var osc = ctx.createOscillator();
    var gain = ctx.createGain();
    osc.type = 'sine';
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.0001, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.2, ctx.currentTime + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.25);
    osc.connect(gain);
    gain.connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.3);
    document.body.setAttribute('data-beeps', String(Number(document.body.getAttribute('data-beeps') || 0) + 1));
  } catch (e) { /* no audio here */ }
}

function notify(title, body, conversationId) {
  var s = settings();
  if (s.sound) beep();
  if (!s.notifications || !window.Notification || Notification.permission !== 'granted') return;
  try {
    var n = new Notification(title, { body: body || '', tag: 'beckon-' + conversationId });
    n.onclick = function () { window.focus(); showConversation(conversationId); n.close(); };
  } catch (e) { /* some browsers only allow notifications from a service worker */ }
}

function outOfFocus() { return document.hidden || !document.hasFocus(); }

on('chat:queued', function (conv) {
  notify(t('alerts.newChat'), (conv.last_message && conv.last_message.text) || '', conv.id);
});
on('chat:message', function (e) {
  if (e.open && !outOfFocus()) return;  // the agent is looking at it
  notify(t('alerts.newMessage'), e.message.text, e.conversation_id);
});

// ---------------------------------------------------------------- wiring

function init() {
  var input = $('reply-input');
  var composer = $('composer');
  if (!input || !composer) return;
  // capture on the form: runs before chats/composer.js's own keydown on the textarea (Enter sends)
  composer.addEventListener('keydown', onComposerKey, true);
  input.addEventListener('input', updatePicker);
  input.addEventListener('blur', function () { setTimeout(closePicker, 150); });
  var toolsBox = $('composer-tools');
  if (toolsBox) {
    toolsBox.appendChild(h('button', {
      className: 'btn btn-small btn-ghost', testid: 'canned-manage', text: t('canned.manage'),
      attrs: { type: 'button', 'data-i18n': 'canned.manage' },
      on: { click: function () { openCannedPanel(null); } },
    }));
  }
  on('ready', renderAlertSettings);
  on('agent', renderAlertSettings);
  on('locale', renderAlertSettings);
  on('composer:mode', function () { closePicker(); });
}

init();
