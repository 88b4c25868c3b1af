/* Beckon console feature: admin — the rules editor (validation inline, live preview, backtest,
 * publish), teams, agents (invite, limits, roles, deactivate) and site settings. Admins only.
 *
 * The rules editor works on the site's whole rules document (GET /admin/rules). Editing a rule
 * builds a candidate document (the set with the form's rule in place), which the server
 * validates as the workers would (POST /admin/rules/validate): each error names its place
 * (`rules[2].when.all[1].cart_value.gte`), and is shown next to the field that place belongs
 * to; places with no field of their own are listed under the form. Publish sends the
 * candidate with the version the edit started from (a newer version in between → reload).
 *
 * A rule's conditions (`when`) are edited with the condition builder (nested "All of" /
 * "Any of" / "Not" groups of rows, one condition kind each); an error located inside the tree
 * is shown on the row (or group) it names. "Edit as JSON" switches to the raw tree; a tree the
 * builder cannot show (an unknown key, an odd value) stays in the JSON editor with a note.
 *
 * Also: the set-password page of an invited agent (`/console/#set-password=TOKEN`).
 */
'use strict';

(function () {
  var B = window.Beckon;
  var h = B.h;
  var t = B.t;

  B.i18n.add('en', {
    'admin.rules': 'Rules',
    'admin.teams': 'Teams',
    'admin.agents': 'Agents',
    'admin.site': 'Site',
    'admin.loading': 'Loading…',
    'admin.failed': 'Could not load: {detail}',
    'admin.saved': 'Saved.',
    'rules.title': 'Engagement rules',
    'rules.none': 'No rules yet. Create the first one.',
    'rules.new': 'New rule',
    'rules.edit': 'Edit',
    'rules.enabled': 'On',
    'rules.priority': 'Priority',
    'rules.name': 'Name',
    'rules.team': 'Team',
    'rules.shown': 'Shown',
    'rules.accepted': 'Accepted',
    'rules.orders': 'Orders',
    'rules.figures_help': 'Since the rule was first counted (Reports → Rules has the whole funnel)',
    'rules.id': 'Id',
    'rules.message': 'Message',
    'rules.when': 'Conditions (when)',
    'rules.when_help': 'JSON: one condition, or {"all": [...]}, {"any": [...]}, {"not": ...}. Example: {"all": [{"page_type": "cart"}, {"cart_value": {"gte": 100}}]}',
    'rules.cheatsheet': 'Conditions',
    'rules.variables': 'Variables: {list}',
    'rules.limits': 'Limits',
    'rules.once_per': 'At most once per',
    'rules.once_session': 'session',
    'rules.once_visitor': 'visitor',
    'rules.once_none': 'no limit',
    'rules.cooldown': 'Cooldown (e.g. 10m)',
    'rules.max_per_hour': 'Max per hour (empty: no cap)',
    'rules.holdout': 'Holdout %',
    'rules.hours': 'Business hours (JSON, empty: the site\'s)',
    'rules.hours_help': 'e.g. {"mon": ["09:00-17:00"], "tue": ["09:00-17:00"]}',
    'rules.preview': 'Preview',
    'rules.preview_none': 'The preview appears here.',
    'rules.save': 'Keep this rule',
    'rules.cancel': 'Close editor',
    'rules.delete': 'Remove rule',
    'rules.other_errors': 'Other problems',
    'rules.bad_json': 'Not valid JSON: {detail}',
    'rules.valid': 'All rules are valid.',
    'rules.invalid': '{n} problem(s) to fix before publishing.',
    'rules.unsaved': 'Unpublished changes.',
    'rules.backtest': 'Backtest',
    'rules.backtest_hours': 'Traffic of the last',
    'rules.hours_1': '1 hour',
    'rules.hours_24': '24 hours',
    'rules.hours_168': '7 days',
    'rules.backtest_running': 'Replaying recorded traffic…',
    'rules.backtest_failed': 'Backtest failed: {detail}',
    'rules.backtest_summary': '{events} events from {visitors} visitors replayed.',
    'rules.backtest_truncated': 'Only part of the window was replayed (limit reached).',
    'rules.bt_rule': 'Rule',
    'rules.bt_fired': 'Invitations',
    'rules.bt_per_hour': 'Per hour (avg)',
    'rules.bt_peak': 'Peak hour',
    'rules.bt_conversations': 'Expected chats',
    'rules.bt_agents': 'Agents needed',
    'rules.bt_total': 'All rules',
    'rules.publish': 'Publish',
    'rules.publishing': 'Publishing…',
    'rules.published_by': 'Version {version}, published by {name} at {at}',
    'rules.published_cli': 'Version {version}, published with the command line',
    'rules.never_published': 'No rules published yet',
    'rules.published_now': 'Published version {version}.',
    'rules.stale': 'Someone published a newer version. Reload before publishing.',
    'rules.reload': 'Reload',
    'when.advanced': 'Edit as JSON',
    'when.to_builder': 'Back to the builder',
    'when.group': 'Group',
    'when.group_all': 'All of',
    'when.group_any': 'Any of',
    'when.group_not': 'Not',
    'when.kind': 'Condition',
    'when.op': 'Operator',
    'when.value': 'Value',
    'when.add': 'Add condition',
    'when.add_group': 'Add group',
    'when.add_bound': 'and…',
    'when.remove': 'Remove condition',
    'when.remove_group': 'Remove group',
    'when.remove_bound': 'Remove this bound',
    'when.yes': 'yes',
    'when.no': 'no',
    'when.names_help': 'comma-separated, e.g. shoes, boots',
    'when.duration_help': 'e.g. 30s, 3m, 1h',
    'when.many_help': 'Tick one or more',
    'when.cannot': 'These conditions cannot be shown in the builder ({detail}); edit them as JSON.',
    'when.bad_json': 'not valid JSON',
    'when.not_a_condition': 'a condition is an object with one key',
    'when.unknown_kind': 'unknown condition {kind}',
    'when.odd_value': 'an unusual value for {kind}',
    'when.op.gte': '≥ at least',
    'when.op.gt': '> more than',
    'when.op.lte': '≤ at most',
    'when.op.lt': '< less than',
    'when.pattern.contains': 'contains',
    'when.pattern.glob': 'matches (* wildcard)',
    'when.pattern.regex': 'matches regex',
    'when.kind.page_type': 'Page type',
    'when.kind.url': 'Page URL',
    'when.kind.category': 'Product category (this page)',
    'when.kind.categories_viewed': 'Has viewed a category',
    'when.kind.product_views': 'Views of this product',
    'when.kind.cart_value': 'Cart value',
    'when.kind.cart_items': 'Items in cart',
    'when.kind.time_on_site': 'Time on site',
    'when.kind.time_on_page': 'Time on page',
    'when.kind.checkout_idle': 'Idle on checkout',
    'when.kind.source': 'Source (utm_source)',
    'when.kind.medium': 'Medium (utm_medium)',
    'when.kind.campaign': 'Campaign (utm_campaign)',
    'when.kind.referrer': 'Referrer',
    'when.kind.from_email': 'Arrived from an e-mail campaign',
    'when.kind.returning': 'Returning visitor (no: first visit)',
    'when.kind.identified': 'Identified (e-mail known)',
    'when.kind.orders': 'Past orders',
    'when.kind.score': 'Score',
    'when.kind.segment': 'Segment',
    'when.kind.seen_price': 'Has seen a price',
    'when.kind.event': 'Event type',
    'when.kind.custom_event': 'Custom event',
    'teams.title': 'Teams',
    'teams.new_id': 'Team id (e.g. support)',
    'teams.new_name': 'Name',
    'teams.create': 'Create team',
    'teams.rename': 'Rename',
    'teams.members': 'Members',
    'teams.add': 'Add',
    'teams.remove': 'Remove {name}',
    'teams.no_members': 'No members.',
    'teams.pick': 'Add an agent…',
    'agents.title': 'Agents',
    'agents.name': 'Name',
    'agents.email': 'E-mail',
    'agents.role': 'Role',
    'agents.role_agent': 'Agent',
    'agents.role_admin': 'Admin',
    'agents.status': 'Status',
    'agents.load': 'Chats',
    'agents.max_chats': 'Max chats',
    'agents.avatar_url': 'Picture URL (https://…)',
    'agents.teams': 'Teams',
    'agents.save': 'Save',
    'agents.deactivate': 'Deactivate',
    'agents.deactivated': 'Deactivated',
    'agents.pending': 'Invited',
    'agents.new_link': 'New password link',
    'agents.invite': 'Invite an agent',
    'agents.invite_send': 'Invite',
    'agents.invite_link': 'Send this link to {name}; it works once, for 72 hours, and is shown only now:',
    'agents.confirm_deactivate': 'Deactivate {name}? They can no longer log in.',
    'status.online': 'Online',
    'status.away': 'Away',
    'status.offline': 'Offline',
    'site.title': 'Site settings',
    'site.keys': 'Keys for your pages',
    'site.site_key': 'Site key (the snippet\'s siteKey)',
    'site.write_key': 'Write key (Segment SDKs\' writeKey; keep it out of public pages you do not control)',
    'site.origins': 'Allowed origins (one per line, e.g. https://shop.example)',
    'site.greeting': 'Widget greeting',
    'site.color': 'Widget colour',
    'site.typing_preview': 'Agents see what visitors are typing',
    'site.language': 'Widget language',
    'site.language_auto': 'The visitor\'s browser',
    'site.offline_message': 'Message when nobody is online',
    'site.default_team': 'Default team',
    'site.timezone': 'Timezone (e.g. Europe/Helsinki)',
    'site.hours': 'Business hours (e.g. 09:00-17:00; empty: closed; all empty: always open)',
    'site.hours_none': 'closed',
    'site.save': 'Save settings',
    'day.mon': 'Mon', 'day.tue': 'Tue', 'day.wed': 'Wed', 'day.thu': 'Thu', 'day.fri': 'Fri',
    'day.sat': 'Sat', 'day.sun': 'Sun',
    'setpw.title': 'Set your password',
    'setpw.password': 'New password (at least 10 characters)',
    'setpw.confirm': 'The same again',
    'setpw.submit': 'Set password',
    'setpw.mismatch': 'The passwords differ.',
    'setpw.done': 'Your password is set, {name}. Log in with {email}.',
    'setpw.to_login': 'Go to log in',
  });
  B.i18n.add('fi', {
    'admin.rules': 'Säännöt',
    'admin.teams': 'Tiimit',
    'admin.agents': 'Agentit',
    'admin.site': 'Sivusto',
    'admin.loading': 'Ladataan…',
    'admin.failed': 'Lataus epäonnistui: {detail}',
    'admin.saved': 'Tallennettu.',
    'rules.title': 'Kutsusäännöt',
    'rules.none': 'Sääntöjä ei vielä ole. Luo ensimmäinen.',
    'rules.new': 'Uusi sääntö',
    'rules.edit': 'Muokkaa',
    'rules.enabled': 'Päällä',
    'rules.priority': 'Prioriteetti',
    'rules.name': 'Nimi',
    'rules.team': 'Tiimi',
    'rules.shown': 'Näytetty',
    'rules.accepted': 'Hyväksytty',
    'rules.orders': 'Tilaukset',
    'rules.figures_help': 'Siitä asti, kun sääntöä alettiin laskea (Raportit → Säännöt näyttää koko suppilon)',
    'rules.id': 'Tunniste',
    'rules.message': 'Viesti',
    'rules.when': 'Ehdot (when)',
    'rules.when_help': 'JSON: yksi ehto tai {"all": [...]}, {"any": [...]}, {"not": ...}. Esimerkki: {"all": [{"page_type": "cart"}, {"cart_value": {"gte": 100}}]}',
    'rules.cheatsheet': 'Ehdot',
    'rules.variables': 'Muuttujat: {list}',
    'rules.limits': 'Rajat',
    'rules.once_per': 'Enintään kerran per',
    'rules.once_session': 'käynti',
    'rules.once_visitor': 'kävijä',
    'rules.once_none': 'ei rajaa',
    'rules.cooldown': 'Tauko (esim. 10m)',
    'rules.max_per_hour': 'Enintään tunnissa (tyhjä: ei rajaa)',
    'rules.holdout': 'Vertailuryhmä %',
    'rules.hours': 'Aukioloajat (JSON, tyhjä: sivuston)',
    'rules.hours_help': 'esim. {"mon": ["09:00-17:00"], "tue": ["09:00-17:00"]}',
    'rules.preview': 'Esikatselu',
    'rules.preview_none': 'Esikatselu näkyy tässä.',
    'rules.save': 'Pidä tämä sääntö',
    'rules.cancel': 'Sulje muokkain',
    'rules.delete': 'Poista sääntö',
    'rules.other_errors': 'Muut ongelmat',
    'rules.bad_json': 'Virheellinen JSON: {detail}',
    'rules.valid': 'Kaikki säännöt ovat kunnossa.',
    'rules.invalid': '{n} korjattavaa ennen julkaisua.',
    'rules.unsaved': 'Julkaisemattomia muutoksia.',
    'rules.backtest': 'Koeajo',
    'rules.backtest_hours': 'Liikenne viimeisen',
    'rules.hours_1': 'tunnin ajalta',
    'rules.hours_24': '24 tunnin ajalta',
    'rules.hours_168': '7 päivän ajalta',
    'rules.backtest_running': 'Toistetaan tallennettua liikennettä…',
    'rules.backtest_failed': 'Koeajo epäonnistui: {detail}',
    'rules.backtest_summary': '{events} tapahtumaa {visitors} kävijältä toistettu.',
    'rules.backtest_truncated': 'Vain osa ajanjaksosta toistettiin (raja täyttyi).',
    'rules.bt_rule': 'Sääntö',
    'rules.bt_fired': 'Kutsuja',
    'rules.bt_per_hour': 'Tunnissa (ka.)',
    'rules.bt_peak': 'Huipputunti',
    'rules.bt_conversations': 'Odotetut keskustelut',
    'rules.bt_agents': 'Agentteja tarvitaan',
    'rules.bt_total': 'Kaikki säännöt',
    'rules.publish': 'Julkaise',
    'rules.publishing': 'Julkaistaan…',
    'rules.published_by': 'Versio {version}, julkaisija {name}, {at}',
    'rules.published_cli': 'Versio {version}, julkaistu komentoriviltä',
    'rules.never_published': 'Sääntöjä ei ole vielä julkaistu',
    'rules.published_now': 'Versio {version} julkaistu.',
    'rules.stale': 'Joku julkaisi uudemman version. Lataa uudelleen ennen julkaisua.',
    'rules.reload': 'Lataa uudelleen',
    'when.advanced': 'Muokkaa JSONina',
    'when.to_builder': 'Takaisin ehtojen rakentajaan',
    'when.group': 'Ryhmä',
    'when.group_all': 'Kaikki näistä',
    'when.group_any': 'Jokin näistä',
    'when.group_not': 'Ei tämä',
    'when.kind': 'Ehto',
    'when.op': 'Vertailu',
    'when.value': 'Arvo',
    'when.add': 'Lisää ehto',
    'when.add_group': 'Lisää ryhmä',
    'when.add_bound': 'ja…',
    'when.remove': 'Poista ehto',
    'when.remove_group': 'Poista ryhmä',
    'when.remove_bound': 'Poista tämä raja',
    'when.yes': 'kyllä',
    'when.no': 'ei',
    'when.names_help': 'pilkuin eroteltuna, esim. kengät, saappaat',
    'when.duration_help': 'esim. 30s, 3m, 1h',
    'when.many_help': 'Valitse yksi tai useampi',
    'when.cannot': 'Näitä ehtoja ei voi näyttää rakentajassa ({detail}); muokkaa niitä JSONina.',
    'when.bad_json': 'virheellinen JSON',
    'when.not_a_condition': 'ehto on olio, jolla on yksi avain',
    'when.unknown_kind': 'tuntematon ehto {kind}',
    'when.odd_value': 'epätavallinen arvo ehdolle {kind}',
    'when.op.gte': '≥ vähintään',
    'when.op.gt': '> yli',
    'when.op.lte': '≤ enintään',
    'when.op.lt': '< alle',
    'when.pattern.contains': 'sisältää',
    'when.pattern.glob': 'vastaa (* jokerimerkki)',
    'when.pattern.regex': 'vastaa säännöllistä lauseketta',
    'when.kind.page_type': 'Sivun tyyppi',
    'when.kind.url': 'Sivun osoite',
    'when.kind.category': 'Tuoteryhmä (tämä sivu)',
    'when.kind.categories_viewed': 'On katsonut tuoteryhmää',
    'when.kind.product_views': 'Tämän tuotteen katselut',
    'when.kind.cart_value': 'Ostoskorin arvo',
    'when.kind.cart_items': 'Tuotteita korissa',
    'when.kind.time_on_site': 'Aika sivustolla',
    'when.kind.time_on_page': 'Aika sivulla',
    'when.kind.checkout_idle': 'Toimettomana kassalla',
    'when.kind.source': 'Lähde (utm_source)',
    'when.kind.medium': 'Kanava (utm_medium)',
    'when.kind.campaign': 'Kampanja (utm_campaign)',
    'when.kind.referrer': 'Viittaava sivu',
    'when.kind.from_email': 'Tuli sähköpostikampanjasta',
    'when.kind.returning': 'Palaava kävijä (ei: ensimmäinen käynti)',
    'when.kind.identified': 'Tunnistettu (sähköposti tiedossa)',
    'when.kind.orders': 'Aiemmat tilaukset',
    'when.kind.score': 'Pisteet',
    'when.kind.segment': 'Segmentti',
    'when.kind.seen_price': 'On nähnyt hinnan',
    'when.kind.event': 'Tapahtuman tyyppi',
    'when.kind.custom_event': 'Oma tapahtuma',
    'teams.title': 'Tiimit',
    'teams.new_id': 'Tiimin tunniste (esim. support)',
    'teams.new_name': 'Nimi',
    'teams.create': 'Luo tiimi',
    'teams.rename': 'Nimeä uudelleen',
    'teams.members': 'Jäsenet',
    'teams.add': 'Lisää',
    'teams.remove': 'Poista {name}',
    'teams.no_members': 'Ei jäseniä.',
    'teams.pick': 'Lisää agentti…',
    'agents.title': 'Agentit',
    'agents.name': 'Nimi',
    'agents.email': 'Sähköposti',
    'agents.role': 'Rooli',
    'agents.role_agent': 'Agentti',
    'agents.role_admin': 'Ylläpitäjä',
    'agents.status': 'Tila',
    'agents.load': 'Keskustelut',
    'agents.max_chats': 'Enint. keskusteluja',
    'agents.avatar_url': 'Kuvan osoite (https://…)',
    'agents.teams': 'Tiimit',
    'agents.save': 'Tallenna',
    'agents.deactivate': 'Poista käytöstä',
    'agents.deactivated': 'Poistettu käytöstä',
    'agents.pending': 'Kutsuttu',
    'agents.new_link': 'Uusi salasanalinkki',
    'agents.invite': 'Kutsu agentti',
    'agents.invite_send': 'Kutsu',
    'agents.invite_link': 'Lähetä tämä linkki henkilölle {name}; se toimii kerran, 72 tuntia, ja näytetään vain nyt:',
    'agents.confirm_deactivate': 'Poistetaanko {name} käytöstä? Hän ei voi enää kirjautua.',
    'status.online': 'Paikalla',
    'status.away': 'Poissa',
    'status.offline': 'Offline',
    'site.title': 'Sivuston asetukset',
    'site.keys': 'Avaimet sivuillesi',
    'site.site_key': 'Sivustoavain (seurantakoodin siteKey)',
    'site.write_key': 'Kirjoitusavain (Segment-kirjastojen writeKey)',
    'site.origins': 'Sallitut osoitteet (yksi per rivi, esim. https://kauppa.fi)',
    'site.greeting': 'Widgetin tervehdys',
    'site.color': 'Widgetin väri',
    'site.typing_preview': 'Agentit näkevät, mitä kävijä kirjoittaa',
    'site.language': 'Widgetin kieli',
    'site.language_auto': 'Kävijän selaimen kieli',
    'site.offline_message': 'Viesti, kun kukaan ei ole paikalla',
    'site.default_team': 'Oletustiimi',
    'site.timezone': 'Aikavyöhyke (esim. Europe/Helsinki)',
    'site.hours': 'Aukioloajat (esim. 09:00-17:00; tyhjä: suljettu; kaikki tyhjiä: aina auki)',
    'site.hours_none': 'suljettu',
    'site.save': 'Tallenna asetukset',
    'day.mon': 'ma', 'day.tue': 'ti', 'day.wed': 'ke', 'day.thu': 'to', 'day.fri': 'pe',
    'day.sat': 'la', 'day.sun': 'su',
    'setpw.title': 'Aseta salasanasi',
    'setpw.password': 'Uusi salasana (vähintään 10 merkkiä)',
    'setpw.confirm': 'Sama uudelleen',
    'setpw.submit': 'Aseta salasana',
    'setpw.mismatch': 'Salasanat eroavat.',
    'setpw.done': 'Salasanasi on asetettu, {name}. Kirjaudu osoitteella {email}.',
    'setpw.to_login': 'Kirjautumiseen',
  });

  var WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
  var SECTIONS = ['rules', 'teams', 'agents', 'site'];

  var state = fresh();

  function fresh() {
    return {
      section: 'rules',
      loaded: false,
      rules: null,        // GET /admin/rules answer
      doc: null,          // the working rules document (may hold unpublished changes)
      dirty: false,
      editing: null,      // index in doc.rules, or -1 for a new rule
      form: null,         // the editor's inputs
      errors: [],         // [{loc, msg}] of the candidate document
      parseError: null,   // {loc, msg} when a JSON field does not parse
      valid: true,
      preview: null,
      backtest: null,
      backtestError: null,
      backtestRunning: false,
      publishNote: null,
      stale: false,
      teams: [],
      agents: [],
      site: null,
      invite: null,
      sectionError: null,
      siteErrors: [],
      siteNote: null,
    };
  }

  function root() { return B.views.container('admin'); }

  function errorText(err) { return (err && (err.detail || err.message)) || String(err); }

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      var args = arguments;
      clearTimeout(timer);
      timer = setTimeout(function () { fn.apply(null, args); }, ms);
    };
  }

  // ------------------------------------------------------------------ loading

  function load() {
    var jobs = [
      B.api('GET', '/admin/rules').then(function (r) { state.rules = r; if (!state.dirty) state.doc = clone(r.rules); }),
      B.api('GET', '/admin/teams').then(function (r) { state.teams = r.teams; }),
      B.api('GET', '/admin/agents').then(function (r) { state.agents = r.agents; }),
      B.api('GET', '/admin/site').then(function (r) { state.site = r.site; }),
      // each rule's figures beside it (the rules report's numbers); the list works without
      B.api('GET', '/reports/rules').then(function (r) {
        state.ruleStats = {};
        (r.rules || []).forEach(function (row) { state.ruleStats[row.rule_id] = row.funnel || {}; });
      }, function () { state.ruleStats = {}; }),
    ];
    return Promise.all(jobs).then(function () {
      state.loaded = true;
      state.sectionError = null;
      render();
    }, function (err) {
      state.sectionError = t('admin.failed', { detail: errorText(err) });
      render();
    });
  }

  function clone(value) { return JSON.parse(JSON.stringify(value)); }

  // ------------------------------------------------------------------ frame

  function render() {
    var container = root();
    if (!container) return;
    B.clear(container);
    var tabs = h('nav', { className: 'admin-sections', testid: 'admin-sections' }, SECTIONS.map(function (name) {
      return h('button', {
        className: 'admin-section-tab',
        testid: 'admin-section-' + name,
        i18n: 'admin.' + name,
        attrs: { type: 'button', 'aria-pressed': state.section === name ? 'true' : 'false' },
        on: { click: function () { state.section = name; render(); } },
      });
    }));
    container.appendChild(h('div', { className: 'admin' }, [
      tabs,
      state.sectionError ? h('p', { className: 'form-error', text: state.sectionError, attrs: { role: 'alert' } }) : null,
      !state.loaded ? h('p', { className: 'admin-muted', i18n: 'admin.loading' }) : renderSection(),
    ]));
  }

  function renderSection() {
    if (state.section === 'teams') return renderTeams();
    if (state.section === 'agents') return renderAgents();
    if (state.section === 'site') return renderSite();
    return renderRules();
  }

  // ------------------------------------------------------------------ rules: list and header

  function teamOptions(selected) {
    return (state.teams.length ? state.teams : B.teams).map(function (team) {
      return h('option', { text: team.name + ' (' + team.team + ')', attrs: { value: team.team, selected: team.team === selected } });
    });
  }

  function publishedText() {
    var r = state.rules;
    if (!r || !r.version) return t('rules.never_published');
    if (r.published) {
      return t('rules.published_by', { version: r.version, name: r.published.by.name, at: B.fmt.dateTime(r.published.at) });
    }
    return t('rules.published_cli', { version: r.version });
  }

  // The list in the order the worker weighs the rules: highest priority first, then by id
  // (triggers' `_by_priority`); indexes into doc.rules, which keeps the document's order.
  function byPriority(rules) {
    function priority(rule) { var n = Number(rule.priority); return isFinite(n) ? n : 0; }
    return rules.map(function (rule, index) { return index; }).sort(function (a, b) {
      var pa = priority(rules[a]);
      var pb = priority(rules[b]);
      if (pa !== pb) return pb - pa;
      var ia = String(rules[a].id || '');
      var ib = String(rules[b].id || '');
      return ia < ib ? -1 : ia > ib ? 1 : a - b;
    });
  }

  function renderRules() {
    var doc = state.doc || { rules: [] };
    var list = h('table', { className: 'admin-table', testid: 'admin-rules-table' }, [
      h('thead', {}, [h('tr', {}, [
        h('th', { i18n: 'rules.enabled' }), h('th', { i18n: 'rules.priority' }),
        h('th', { i18n: 'rules.name' }), h('th', { i18n: 'rules.team' }),
        h('th', { className: 'rule-figure', i18n: 'rules.shown', attrs: { title: t('rules.figures_help') } }),
        h('th', { className: 'rule-figure', i18n: 'rules.accepted', attrs: { title: t('rules.figures_help') } }),
        h('th', { className: 'rule-figure', i18n: 'rules.orders', attrs: { title: t('rules.figures_help') } }),
        h('th', {}),
      ])]),
      h('tbody', {}, byPriority(doc.rules).map(function (index) {
        var rule = doc.rules[index];
        var figures = (state.ruleStats || {})[rule.id];
        function figure(testid, key) {
          return h('td', { className: 'rule-figure', testid: testid, text: figures ? B.fmt.number(figures[key] || 0) : t('common.none') });
        }
        var toggle = h('input', {
          testid: 'rule-enabled',
          attrs: { type: 'checkbox', checked: rule.enabled !== false, 'aria-label': t('rules.enabled') + ' ' + rule.name },
          on: { change: function () { rule.enabled = toggle.checked; changed(); } },
        });
        return h('tr', { className: 'rule-row' + (state.editing === index ? ' is-editing' : ''), testid: 'rule-row', data: { 'rule-id': rule.id, enabled: String(rule.enabled !== false) } }, [
          h('td', {}, [toggle]),
          h('td', { text: String(rule.priority || 0) }),
          h('td', {}, [h('span', { className: 'rule-row-name', text: rule.name }), h('span', { className: 'admin-muted rule-row-id', text: ' ' + rule.id })]),
          h('td', { text: rule.team || 'sales' }),
          figure('rule-shown', 'shown'),
          figure('rule-accepted', 'accepted'),
          figure('rule-orders', 'orders_invited'),
          h('td', {}, [h('button', {
            className: 'btn btn-small', testid: 'rule-edit', i18n: 'rules.edit', attrs: { type: 'button' },
            on: { click: function () { openEditor(index); } },
          })]),
        ]);
      })),
    ]);
    var status = state.parseError ? 1 : state.errors.length;
    var hours = h('select', { testid: 'backtest-hours', attrs: { 'aria-label': t('rules.backtest_hours') } }, [1, 24, 168].map(function (n) {
      return h('option', { i18n: 'rules.hours_' + n, attrs: { value: String(n), selected: n === (state.backtestHours || 24) } });
    }));
    hours.addEventListener('change', function () { state.backtestHours = Number(hours.value); });
    var canPublish = state.valid && !state.parseError && !state.publishing && !state.stale;
    return h('section', { className: 'admin-rules', testid: 'admin-rules' }, [
      h('header', { className: 'admin-header' }, [
        h('h2', { i18n: 'rules.title' }),
        h('span', { className: 'admin-muted', testid: 'rules-version', text: publishedText() }),
        h('span', { className: 'admin-spacer' }),
        h('button', { className: 'btn', testid: 'rule-new', i18n: 'rules.new', attrs: { type: 'button' }, on: { click: function () { openEditor(-1); } } }),
      ]),
      doc.rules.length ? list : h('p', { className: 'admin-muted', i18n: 'rules.none' }),
      state.editing !== null ? renderEditor() : null,
      h('div', { className: 'admin-actions' }, [
        h('span', { className: 'admin-muted', text: t('rules.backtest_hours') }),
        hours,
        h('button', {
          className: 'btn', testid: 'rule-backtest', i18n: 'rules.backtest',
          attrs: { type: 'button', disabled: !state.valid || !!state.parseError || state.backtestRunning },
          on: { click: runBacktest },
        }),
        h('button', {
          className: 'btn btn-primary', testid: 'rule-publish', i18n: state.publishing ? 'rules.publishing' : 'rules.publish',
          attrs: { type: 'button', disabled: !canPublish },
          on: { click: publish },
        }),
        h('span', {
          className: 'admin-note' + (status ? ' is-bad' : (state.dirty ? ' is-pending' : '')), testid: 'rules-validity',
          text: status ? t('rules.invalid', { n: status }) : (state.dirty ? t('rules.unsaved') : t('rules.valid')),
        }),
      ]),
      h('p', { className: 'admin-note', testid: 'publish-status', attrs: { role: 'status' }, text: state.publishNote || '' }),
      state.stale ? h('button', { className: 'btn btn-small', testid: 'rules-reload', i18n: 'rules.reload', attrs: { type: 'button' }, on: { click: reload } }) : null,
      renderBacktest(),
    ]);
  }

  function reload() {
    state.dirty = false;
    state.stale = false;
    state.editing = null;
    state.form = null;
    state.errors = [];
    state.parseError = null;
    state.valid = true;
    state.publishNote = null;
    load();
  }

  // ------------------------------------------------------------------ rules: the editor

  var FIELDS = ['id', 'name', 'enabled', 'priority', 'team', 'message', 'when', 'once_per', 'cooldown', 'max_per_hour', 'holdout', 'hours'];
  // where an error's place belongs: the first part of its location inside the rule
  var FIELD_OF = {
    id: 'id', name: 'name', enabled: 'enabled', priority: 'priority', team: 'team', message: 'message',
    when: 'when', holdout_percent: 'holdout', business_hours: 'hours',
    'limits.once_per': 'once_per', 'limits.cooldown': 'cooldown', 'limits.max_per_hour': 'max_per_hour',
  };

  // `rules[2].limits.cooldown` (editing rule 2) -> 'cooldown'; null: no field of its own
  function fieldFor(loc, index) {
    var prefix = 'rules[' + index + ']';
    if (loc.indexOf(prefix) !== 0) return null;
    var rest = loc.slice(prefix.length).replace(/^\./, '');
    var parts = rest.split(/[.[]/);
    var two = parts.slice(0, 2).join('.');
    return FIELD_OF[two] || FIELD_OF[parts[0]] || null;
  }

  function durationText(value) {
    if (value == null || value === '') return '';
    var n = Number(value);
    if (!isFinite(n)) return String(value);
    if (n % 3600 === 0 && n >= 3600) return (n / 3600) + 'h';
    if (n % 60 === 0 && n >= 60) return (n / 60) + 'm';
    return n + 's';
  }

  function openEditor(index) {
    var rule = index >= 0 ? state.doc.rules[index] : {
      id: '', name: '', enabled: true, priority: 0, team: (B.site && B.site.default_team) || 'sales',
      message: '', when: { all: [{ page_type: 'product' }] }, limits: { once_per: 'session', cooldown: 600 },
      holdout_percent: 10,
    };
    var limits = rule.limits || {};
    state.editing = index;
    state.form = {
      id: rule.id, name: rule.name, enabled: rule.enabled !== false, priority: String(rule.priority || 0),
      team: rule.team || 'sales', message: rule.message || '',
      when: JSON.stringify(rule.when, null, 2),
      once_per: limits.once_per === null ? '' : (limits.once_per || 'session'),
      cooldown: durationText(limits.cooldown == null ? 600 : limits.cooldown),
      max_per_hour: limits.max_per_hour == null ? '' : String(limits.max_per_hour),
      holdout: String(rule.holdout_percent == null ? 10 : rule.holdout_percent),
      hours: rule.business_hours ? JSON.stringify(rule.business_hours) : '',
      base: rule,   // fields the form does not show (description, default, expires_after)
      whenMode: 'builder',
      tree: null,
      whenNote: null,
    };
    try {
      state.form.tree = readWhen(rule.when);
    } catch (e) {
      if (!(e instanceof Unrepresentable)) throw e;
      state.form.whenMode = 'json';
      state.form.whenNote = t('when.cannot', { detail: e.detail });
    }
    state.preview = null;
    render();
    validateSoon();
    previewSoon();
    var first = root().querySelector('[data-testid="rule-' + (index >= 0 ? 'name' : 'id') + '"]');
    if (first) first.focus();
  }

  function numberOrText(text) {
    var trimmed = String(text).trim();
    if (trimmed === '') return undefined;
    var n = Number(trimmed);
    return isFinite(n) ? n : trimmed;   // the server says what is wrong with text
  }

  // The rule the form describes; {rule, parseError}
  function formRule() {
    var f = state.form;
    var rule = {};
    Object.keys(f.base || {}).forEach(function (k) { rule[k] = f.base[k]; });
    rule.id = f.id.trim();
    rule.name = f.name;
    rule.enabled = f.enabled;
    rule.priority = numberOrText(f.priority);
    if (rule.priority === undefined) delete rule.priority;
    rule.team = f.team;
    rule.message = f.message;
    var limits = {};
    Object.keys((f.base && f.base.limits) || {}).forEach(function (k) { limits[k] = f.base.limits[k]; });
    limits.once_per = f.once_per === '' ? null : f.once_per;
    limits.cooldown = numberOrText(f.cooldown);
    if (limits.cooldown === undefined) delete limits.cooldown;
    limits.max_per_hour = numberOrText(f.max_per_hour);
    if (limits.max_per_hour === undefined) limits.max_per_hour = null;
    rule.limits = limits;
    rule.holdout_percent = numberOrText(f.holdout);
    if (rule.holdout_percent === undefined) delete rule.holdout_percent;
    var parseError = null;
    if (f.whenMode === 'builder') {
      rule.when = writeWhen(f.tree);
    } else {
      try {
        rule.when = JSON.parse(f.when);
      } catch (e) {
        parseError = { field: 'when', msg: t('rules.bad_json', { detail: e.message }) };
      }
    }
    if (f.hours.trim()) {
      try {
        rule.business_hours = JSON.parse(f.hours);
      } catch (e) {
        parseError = parseError || { field: 'hours', msg: t('rules.bad_json', { detail: e.message }) };
      }
    } else {
      rule.business_hours = null;
    }
    return { rule: rule, parseError: parseError };
  }

  // The whole document with the form's rule in place (or appended).
  function candidate() {
    var doc = clone(state.doc || { rules: [] });
    if (state.editing === null) return { doc: doc, parseError: null };
    var made = formRule();
    if (state.editing >= 0) doc.rules[state.editing] = made.rule;
    else doc.rules.push(made.rule);
    return { doc: doc, parseError: made.parseError };
  }

  function editingIndex() {
    if (state.editing === null) return null;
    return state.editing >= 0 ? state.editing : (state.doc ? state.doc.rules.length : 0);
  }

  var validateSoon = debounce(validate, 250);
  var previewSoon = debounce(updatePreview, 250);

  function validate() {
    var made = candidate();
    state.parseError = made.parseError;
    if (made.parseError) {
      state.valid = false;
      showErrors();
      return Promise.resolve();
    }
    var asked = made.doc;
    return B.api('POST', '/admin/rules/validate', { rules: asked }).then(function (answer) {
      state.errors = answer.errors || [];
      state.valid = !!answer.ok;
      showErrors();
    }, function (err) {
      state.errors = [{ loc: '', msg: errorText(err) }];
      state.valid = false;
      showErrors();
    });
  }

  // Puts each error next to its field (or in the list), without rebuilding the form.
  function showErrors() {
    var container = root();
    if (!container) return;
    container.querySelectorAll('[data-testid="rule-error"]').forEach(function (n) { n.remove(); });
    container.querySelectorAll('.when-group.has-error, .when-row.has-error').forEach(function (n) { n.classList.remove('has-error'); });
    var others = container.querySelector('[data-testid="rule-errors"]');
    var index = editingIndex();
    var unplaced = [];
    var errors = state.errors.slice();
    if (state.parseError) {
      errors = [{ loc: 'rules[' + index + '].' + state.parseError.field, msg: state.parseError.msg, field: state.parseError.field }];
    }
    errors.forEach(function (error) {
      var field = error.field || (index !== null ? fieldFor(error.loc, index) : null);
      var slot = (field === 'when' && builderSlot(container, error.loc, index)) ||
        (field && container.querySelector('[data-error-for="' + field + '"]'));
      var node = h('p', { className: 'form-error rule-error', testid: 'rule-error', data: { loc: error.loc, field: field }, text: error.msg, attrs: { role: 'alert' } });
      if (slot) slot.appendChild(node);
      else unplaced.push(error);
    });
    if (others) {
      B.clear(others);
      others.hidden = !unplaced.length;
      if (unplaced.length) {
        others.appendChild(h('p', { className: 'admin-subtitle', i18n: 'rules.other_errors' }));
        unplaced.forEach(function (error) {
          others.appendChild(h('p', { className: 'form-error rule-error', testid: 'rule-error', data: { loc: error.loc }, text: (error.loc ? error.loc + ': ' : '') + error.msg }));
        });
      }
    }
    refreshActions();
  }

  function refreshActions() {
    var container = root();
    if (!container) return;
    var bad = state.parseError ? 1 : state.errors.length;
    var publishBtn = container.querySelector('[data-testid="rule-publish"]');
    if (publishBtn) publishBtn.disabled = !(state.valid && !state.parseError && !state.publishing && !state.stale);
    var backtestBtn = container.querySelector('[data-testid="rule-backtest"]');
    if (backtestBtn) backtestBtn.disabled = !(state.valid && !state.parseError) || state.backtestRunning;
    var note = container.querySelector('[data-testid="rules-validity"]');
    if (note) {
      note.textContent = bad ? t('rules.invalid', { n: bad }) : (state.dirty || state.editing !== null ? t('rules.unsaved') : t('rules.valid'));
      note.className = 'admin-note' + (bad ? ' is-bad' : (state.dirty || state.editing !== null ? ' is-pending' : ''));
    }
  }

  function updatePreview() {
    if (!state.form) return;
    var made = formRule();
    B.api('POST', '/admin/rules/preview', { rule: { message: made.rule.message } }).then(function (answer) {
      state.preview = answer;
      showPreview();
    }, function (err) {
      state.preview = { ok: false, text: null, errors: [{ msg: errorText(err) }] };
      showPreview();
    });
  }

  function showPreview() {
    var box = root() && root().querySelector('[data-testid="rule-preview"]');
    if (!box) return;
    B.clear(box);
    var p = state.preview;
    if (!p) { box.appendChild(h('span', { className: 'admin-muted', i18n: 'rules.preview_none' })); return; }
    box.setAttribute('data-ok', p.ok ? 'true' : 'false');
    if (p.text) {
      box.appendChild(h('span', { className: 'rule-preview-bubble', testid: 'rule-preview-text', text: p.text }));
    } else {
      box.appendChild(h('span', { className: 'admin-muted', text: (p.errors && p.errors[0] && p.errors[0].msg) || '' }));
    }
  }

  function input(field, type, labelKey, extra) {
    var f = state.form;
    var node;
    extra = extra || {};
    if (type === 'textarea') {
      node = h('textarea', { testid: 'rule-' + field, attrs: { rows: extra.rows || 3, spellcheck: 'false' } });
      node.value = f[field];
    } else if (type === 'checkbox') {
      node = h('input', { testid: 'rule-' + field + '-input', attrs: { type: 'checkbox', checked: f[field] } });
    } else if (type === 'select') {
      node = h('select', { testid: 'rule-' + field }, extra.options);
      node.value = f[field];
    } else {
      node = h('input', { testid: 'rule-' + field, attrs: { type: 'text', autocomplete: 'off', inputmode: extra.inputmode } });
      node.value = f[field];
    }
    node.addEventListener(type === 'checkbox' || type === 'select' ? 'change' : 'input', function () {
      f[field] = type === 'checkbox' ? node.checked : node.value;
      validateSoon();
      if (field === 'message') previewSoon();
    });
    return h('label', { className: 'field admin-field admin-field-' + field }, [
      h('span', { i18n: labelKey }),
      node,
      extra.help ? h('small', { className: 'admin-muted', text: extra.help }) : null,
      h('div', { className: 'admin-field-errors', data: { 'error-for': field } }),
    ]);
  }

  function cheatSheet() {
    var catalog = (state.rules && state.rules.catalog) || {};
    var items = [
      ['page_type', '"cart" | ["product", "category"]  (' + (catalog.page_types || []).join(', ') + ')'],
      ['url', '{"glob": "*/sale/*"} | {"contains": "…"} | {"regex": "…"}'],
      ['cart_value / cart_items / product_views / score / orders', '{"gte": 100}  (gte, gt, lte, lt)'],
      ['time_on_site / time_on_page / checkout_idle', '{"gte": "3m"}'],
      ['category / categories_viewed / source / medium / campaign / segment', '"name" | ["a", "b"]'],
      ['returning / from_email / seen_price / identified', 'true | false'],
      ['event', '"product_viewed" …'],
      ['all / any / not', '[...] / [...] / {...}'],
    ];
    return h('details', { className: 'admin-cheatsheet', testid: 'rule-cheatsheet' }, [
      h('summary', { i18n: 'rules.cheatsheet' }),
      h('dl', {}, items.reduce(function (acc, item) {
        acc.push(h('dt', { text: item[0] }));
        acc.push(h('dd', { text: item[1] }));
        return acc;
      }, [])),
      h('p', { className: 'admin-muted', text: t('rules.variables', { list: (catalog.variables || []).map(function (v) { return '{' + v + '}'; }).join(' ') }) }),
    ]);
  }

  // ------------------------------------------------------------------ rules: the condition builder
  //
  // The `when` tree as nested groups ("All of" / "Any of" / "Not") of rows (one condition each).
  // A group is {group: 'all'|'any'|'not', items: [...]}, a row {kind, op/value | values | bounds}.
  // It reads any tree the contracts accept (also the dumped form, with null bounds and pattern
  // kinds) and writes the contracts' JSON shape; writing gives each node its place
  // (`when.all[1]`), which is how a located error (`rules[0].when.all[1].cart_value.gte`)
  // finds its row. What it cannot show (an unknown key, an odd value) stays in the JSON editor.

  var KIND_TYPES = {
    url: 'pattern', referrer: 'pattern',
    page_type: 'choice', event: 'choice', segment: 'choice',
    category: 'names', categories_viewed: 'names', source: 'names', medium: 'names',
    campaign: 'names', custom_event: 'names',
    cart_value: 'number', cart_items: 'number', product_views: 'number', score: 'number', orders: 'number',
    time_on_site: 'duration', time_on_page: 'duration', checkout_idle: 'duration',
    returning: 'bool', from_email: 'bool', seen_price: 'bool', identified: 'bool',
  };
  var KIND_ORDER = [
    'page_type', 'url', 'category', 'categories_viewed', 'product_views', 'cart_value', 'cart_items',
    'time_on_site', 'time_on_page', 'checkout_idle', 'source', 'medium', 'campaign', 'referrer',
    'from_email', 'returning', 'identified', 'orders', 'score', 'segment', 'seen_price', 'event',
    'custom_event',
  ];
  var GROUP_OPS = ['all', 'any', 'not'];
  var OPERATORS = ['gte', 'gt', 'lte', 'lt'];
  var PATTERNS = ['contains', 'glob', 'regex'];

  function Unrepresentable(detail) { this.detail = detail; }

  function isObject(v) { return v !== null && typeof v === 'object' && !Array.isArray(v); }

  function setKeys(v) { return Object.keys(v).filter(function (k) { return v[k] != null; }); }

  function readNode(json, where) {
    if (!isObject(json) || Object.keys(json).length !== 1) throw new Unrepresentable(where + ': ' + t('when.not_a_condition'));
    var key = Object.keys(json)[0];
    var v = json[key];
    var odd = function () { return new Unrepresentable(where + ': ' + t('when.odd_value', { kind: key })); };
    if (key === 'all' || key === 'any') {
      if (!Array.isArray(v)) throw odd();
      return { group: key, items: v.map(function (c, i) { return readNode(c, where + '.' + key + '[' + i + ']'); }) };
    }
    if (key === 'not') return { group: 'not', items: [readNode(v, where + '.not')] };
    var type = KIND_TYPES[key];
    if (!type) throw new Unrepresentable(where + ': ' + t('when.unknown_kind', { kind: key }));
    var row = { kind: key };
    if (type === 'pattern') {
      if (typeof v === 'string') { row.op = 'glob'; row.value = v; return row; }
      var kinds = isObject(v) ? setKeys(v) : [];
      if (kinds.length !== 1 || PATTERNS.indexOf(kinds[0]) < 0 || typeof v[kinds[0]] !== 'string') throw odd();
      row.op = kinds[0];
      row.value = v[kinds[0]];
    } else if (type === 'choice' || type === 'names') {
      var list = typeof v === 'string' ? [v] : v;
      if (!Array.isArray(list) || !list.every(function (x) { return typeof x === 'string'; })) throw odd();
      row.values = list.slice();
    } else if (type === 'number' || type === 'duration') {
      var ops = isObject(v) ? setKeys(v) : [];
      if (!ops.length || ops.length > 2 || ops.some(function (k) {
        return OPERATORS.indexOf(k) < 0 || (typeof v[k] !== 'number' && typeof v[k] !== 'string');
      })) throw odd();
      row.bounds = ops.map(function (k) {
        return { op: k, value: type === 'duration' && typeof v[k] === 'number' ? durationText(v[k]) : String(v[k]) };
      });
    } else {
      if (typeof v !== 'boolean') throw odd();
      row.value = v;
    }
    return row;
  }

  // The builder's root is always a group; a bare condition is kept bare while it is alone.
  function readWhen(json) {
    var node = readNode(json, 'when');
    if (node.group) return node;
    return { group: 'all', items: [node], bare: true };
  }

  function numberOr(text, keepText) {
    var trimmed = String(text).trim();
    if (trimmed === '') return '';          // the server says a value is missing, at its place
    var n = Number(trimmed);
    return isFinite(n) ? n : (keepText ? trimmed : String(text));
  }

  function writeNode(node, path) {
    node.path = path;
    if (node.group === 'not') {
      return { not: node.items.length ? writeNode(node.items[0], path + '.not') : null };
    }
    if (node.group) {
      var out = {};
      out[node.group] = node.items.map(function (c, i) { return writeNode(c, path + '.' + node.group + '[' + i + ']'); });
      return out;
    }
    var type = KIND_TYPES[node.kind];
    var value;
    if (type === 'pattern') { value = {}; value[node.op] = node.value; }
    else if (type === 'choice' || type === 'names') value = node.values.slice();
    else if (type === 'number' || type === 'duration') {
      value = {};
      node.bounds.forEach(function (b) { value[b.op] = numberOr(b.value, type === 'duration'); });
    } else value = node.value;
    var cond = {};
    cond[node.kind] = value;
    return cond;
  }

  function writeWhen(root) {
    if (root.bare && root.group === 'all' && root.items.length === 1 && !root.items[0].group) {
      root.path = null;
      return writeNode(root.items[0], 'when');
    }
    return writeNode(root, 'when');
  }

  function segmentNames() {
    var th = (state.doc && state.doc.scoring && state.doc.scoring.thresholds) || { warm: 30, hot: 60 };
    return ['cold'].concat(Object.keys(th).sort(function (a, b) { return th[a] - th[b]; }));
  }

  function choicesFor(kind) {
    var catalog = (state.rules && state.rules.catalog) || {};
    if (kind === 'page_type') return catalog.page_types || ['product'];
    if (kind === 'event') return catalog.events || ['page_view'];
    return segmentNames();
  }

  function freshRow(kind) {
    var type = KIND_TYPES[kind];
    var row = { kind: kind };
    if (type === 'pattern') { row.op = 'contains'; row.value = ''; }
    else if (type === 'choice') row.values = kind === 'page_type' ? ['product'] : [choicesFor(kind).slice(-1)[0]];
    else if (type === 'names') row.values = [];
    else if (type === 'number' || type === 'duration') row.bounds = [{ op: 'gte', value: '' }];
    else row.value = true;
    return row;
  }

  function whenChanged() {
    writeWhen(state.form.tree);
    validateSoon();
  }

  function structureChanged() {
    var box = root() && root().querySelector('[data-testid="when-builder"]');
    if (box) fillBuilder(box);
    validateSoon();
  }

  function fillBuilder(box) {
    var tree = state.form.tree;
    writeWhen(tree);
    B.clear(box);
    box.appendChild(groupEl(tree, null));
  }

  function smallButton(testid, key, onClick, text) {
    return h('button', {
      className: 'btn btn-small when-btn', testid: testid, i18n: text ? null : key, text: text || null,
      attrs: { type: 'button', 'aria-label': t(key), title: t(key) }, on: { click: onClick },
    });
  }

  function groupEl(group, parent) {
    var op = h('select', { testid: 'when-group-op', attrs: { 'aria-label': t('when.group') } }, GROUP_OPS.map(function (g) {
      return h('option', { i18n: 'when.group_' + g, attrs: { value: g } });
    }));
    op.value = group.group;
    op.addEventListener('change', function () {
      if (op.value === 'not' && group.items.length > 1) group.items = [{ group: group.group, items: group.items }];
      group.group = op.value;
      structureChanged();
    });
    var full = group.group === 'not' && group.items.length >= 1;
    return h('div', { className: 'when-group when-group-' + group.group, testid: 'when-group', data: { op: group.group, 'when-path': group.path } }, [
      h('div', { className: 'when-group-head' }, [
        op,
        parent ? smallButton('when-remove', 'when.remove_group', function () {
          parent.items.splice(parent.items.indexOf(group), 1);
          structureChanged();
        }, '×') : null,
      ]),
      h('div', { className: 'admin-field-errors when-errors' }),
      h('div', { className: 'when-children' }, group.items.map(function (item) {
        return item.group ? groupEl(item, group) : rowEl(item, group);
      })),
      full ? null : h('div', { className: 'when-group-actions' }, [
        smallButton('when-add', 'when.add', function () { group.items.push(freshRow('page_type')); structureChanged(); }),
        smallButton('when-add-group', 'when.add_group', function () {
          group.items.push({ group: 'any', items: [freshRow('page_type')] });
          structureChanged();
        }),
      ]),
    ]);
  }

  function valueInput(value, help, onInput) {
    var node = h('input', { className: 'when-value', testid: 'when-value', attrs: { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: help || null, 'aria-label': t('when.value') } });
    node.value = value;
    node.addEventListener('input', function () { onInput(node.value); whenChanged(); });
    return node;
  }

  function opSelect(options, prefix, value, onChange) {
    var node = h('select', { className: 'when-op', testid: 'when-op', attrs: { 'aria-label': t('when.op') } }, options.map(function (o) {
      return h('option', { i18n: prefix + o, attrs: { value: o } });
    }));
    node.value = value;
    node.addEventListener('change', function () { onChange(node.value); whenChanged(); });
    return node;
  }

  function rowInputs(row) {
    var type = KIND_TYPES[row.kind];
    if (type === 'pattern') {
      return [
        opSelect(PATTERNS, 'when.pattern.', row.op, function (v) { row.op = v; }),
        valueInput(row.value, null, function (v) { row.value = v; }),
      ];
    }
    if (type === 'names') {
      return [valueInput(row.values.join(', '), t('when.names_help'), function (v) {
        row.values = v.split(',').map(function (x) { return x.trim(); }).filter(Boolean);
      })];
    }
    if (type === 'choice') {
      var options = choicesFor(row.kind).slice();
      row.values.forEach(function (v) { if (options.indexOf(v) < 0) options.push(v); });  // kept; the server names it
      // one checkbox per choice (a native multi-select hides what is picked and needs Ctrl)
      var box = h('div', {
        className: 'when-value when-many when-choices', testid: 'when-value',
        attrs: { role: 'group', 'aria-label': t('when.value'), title: t('when.many_help') },
      });
      options.forEach(function (o) {
        var check = h('input', { testid: 'when-choice', data: { value: o }, attrs: { type: 'checkbox', value: o, checked: row.values.indexOf(o) >= 0 } });
        check.addEventListener('change', function () {
          row.values = Array.prototype.slice.call(box.querySelectorAll('input:checked')).map(function (c) { return c.value; });
          whenChanged();
        });
        box.appendChild(h('label', { className: 'admin-check when-choice' }, [check, ' ', o]));
      });
      return [box];
    }
    if (type === 'number' || type === 'duration') {
      var parts = [];
      row.bounds.forEach(function (bound, i) {
        if (i) parts.push(h('span', { className: 'admin-muted', i18n: 'when.add_bound' }));
        parts.push(opSelect(OPERATORS, 'when.op.', bound.op, function (v) { bound.op = v; }));
        var node = valueInput(bound.value, type === 'duration' ? t('when.duration_help') : null, function (v) { bound.value = v; });
        if (type === 'number') node.setAttribute('inputmode', 'decimal');
        node.classList.add('when-short');
        parts.push(node);
        if (i) {
          parts.push(smallButton('when-remove-bound', 'when.remove_bound', function () {
            row.bounds.splice(i, 1);
            structureChanged();
          }, '×'));
        }
      });
      if (row.bounds.length < 2) {
        parts.push(smallButton('when-add-bound', 'when.add_bound', function () {
          var first = row.bounds[0].op;
          row.bounds.push({ op: first.charAt(0) === 'g' ? 'lte' : 'gte', value: '' });
          structureChanged();
        }));
      }
      return parts;
    }
    var yes = h('select', { className: 'when-value', testid: 'when-value', attrs: { 'aria-label': t('when.value') } }, [
      h('option', { i18n: 'when.yes', attrs: { value: 'true' } }),
      h('option', { i18n: 'when.no', attrs: { value: 'false' } }),
    ]);
    yes.value = row.value ? 'true' : 'false';
    yes.addEventListener('change', function () { row.value = yes.value === 'true'; whenChanged(); });
    return [yes];
  }

  function rowEl(row, group) {
    var kind = h('select', { className: 'when-kind', testid: 'when-kind', attrs: { 'aria-label': t('when.kind') } }, KIND_ORDER.map(function (k) {
      return h('option', { i18n: 'when.kind.' + k, attrs: { value: k } });
    }));
    kind.value = row.kind;
    kind.addEventListener('change', function () {
      group.items[group.items.indexOf(row)] = freshRow(kind.value);
      structureChanged();
    });
    return h('div', { className: 'when-row', testid: 'when-row', data: { kind: row.kind, 'when-path': row.path } }, [
      h('div', { className: 'when-row-main' }, [kind].concat(rowInputs(row), [
        smallButton('when-remove', 'when.remove', function () {
          group.items.splice(group.items.indexOf(row), 1);
          structureChanged();
        }, '×'),
      ])),
      h('div', { className: 'admin-field-errors when-errors' }),
    ]);
  }

  // The error slot of the builder node an error's place names (the nearest enclosing one).
  function builderSlot(container, loc, index) {
    var prefix = 'rules[' + index + '].';
    if (!state.form || state.form.whenMode !== 'builder' || loc.indexOf(prefix) !== 0) return null;
    var builder = container.querySelector('[data-testid="when-builder"]');
    if (!builder) return null;
    var path = loc.slice(prefix.length);
    while (path.indexOf('when') === 0) {
      var node = builder.querySelector('[data-when-path="' + CSS.escape(path) + '"]');
      if (node) {
        node.classList.add('has-error');
        return node.querySelector(':scope > .when-errors');
      }
      var shorter = path.replace(/(\.[^.[\]]+|\[\d+\])$/, '');
      if (shorter === path) break;
      path = shorter;
    }
    return null;
  }

  function toggleWhenMode() {
    var f = state.form;
    if (f.whenMode === 'builder') {
      f.when = JSON.stringify(writeWhen(f.tree), null, 2);
      f.whenMode = 'json';
      f.whenNote = null;
    } else {
      var parsed;
      try {
        parsed = JSON.parse(f.when);
      } catch (e) {
        f.whenNote = t('when.cannot', { detail: t('when.bad_json') });
        return replaceWhenSection();
      }
      try {
        f.tree = readWhen(parsed);
        f.whenMode = 'builder';
        f.whenNote = null;
      } catch (e) {
        if (!(e instanceof Unrepresentable)) throw e;
        f.whenNote = t('when.cannot', { detail: e.detail });
      }
    }
    replaceWhenSection();
  }

  function replaceWhenSection() {
    var old = root() && root().querySelector('[data-testid="rule-when-field"]');
    if (old) old.replaceWith(whenSection());
    validateSoon();
  }

  function whenSection() {
    var f = state.form;
    var builder = f.whenMode === 'builder';
    var body;
    if (builder) {
      body = h('div', { className: 'when-builder', testid: 'when-builder' });
      fillBuilder(body);
    } else {
      var area = h('textarea', { testid: 'rule-when', attrs: { rows: 8, spellcheck: 'false', 'aria-label': t('rules.when') } });
      area.value = f.when;
      area.addEventListener('input', function () { f.when = area.value; validateSoon(); });
      body = h('div', {}, [area, h('small', { className: 'admin-muted', text: t('rules.when_help') }), cheatSheet()]);
    }
    return h('div', { className: 'field admin-field admin-field-when', testid: 'rule-when-field', data: { mode: f.whenMode } }, [
      h('div', { className: 'when-head' }, [
        h('span', { i18n: 'rules.when' }),
        h('button', {
          className: 'btn btn-small', testid: 'when-advanced', i18n: builder ? 'when.advanced' : 'when.to_builder',
          attrs: { type: 'button', 'aria-pressed': builder ? 'false' : 'true' }, on: { click: toggleWhenMode },
        }),
      ]),
      f.whenNote ? h('p', { className: 'admin-note is-bad', testid: 'when-note', attrs: { role: 'status' }, text: f.whenNote }) : null,
      body,
      h('div', { className: 'admin-field-errors', data: { 'error-for': 'when' } }),
    ]);
  }

  function renderEditor() {
    var once = [['session', 'rules.once_session'], ['visitor', 'rules.once_visitor'], ['', 'rules.once_none']].map(function (o) {
      return h('option', { i18n: o[1], attrs: { value: o[0] } });
    });
    var editor = h('form', { className: 'admin-editor', testid: 'rule-editor', attrs: { novalidate: true } }, [
      h('div', { className: 'admin-grid' }, [
        input('id', 'text', 'rules.id'),
        input('name', 'text', 'rules.name'),
        input('priority', 'text', 'rules.priority', { inputmode: 'numeric' }),
        input('team', 'select', 'rules.team', { options: teamOptions(state.form.team) }),
        input('enabled', 'checkbox', 'rules.enabled'),
      ]),
      whenSection(),
      h('div', { className: 'admin-grid admin-grid-2' }, [
        input('message', 'textarea', 'rules.message', { rows: 3 }),
        h('div', { className: 'rule-preview' }, [
          h('span', { className: 'admin-subtitle', i18n: 'rules.preview' }),
          h('div', { className: 'rule-preview-box', testid: 'rule-preview' }),
        ]),
      ]),
      h('fieldset', { className: 'admin-grid' }, [
        h('legend', { i18n: 'rules.limits' }),
        input('once_per', 'select', 'rules.once_per', { options: once }),
        input('cooldown', 'text', 'rules.cooldown'),
        input('max_per_hour', 'text', 'rules.max_per_hour', { inputmode: 'numeric' }),
        input('holdout', 'text', 'rules.holdout', { inputmode: 'decimal' }),
      ]),
      input('hours', 'textarea', 'rules.hours', { rows: 2, help: t('rules.hours_help') }),
      h('div', { className: 'admin-field-errors admin-other-errors', testid: 'rule-errors', attrs: { hidden: true } }),
      h('div', { className: 'admin-actions' }, [
        h('button', { className: 'btn btn-primary', testid: 'rule-save', i18n: 'rules.save', attrs: { type: 'submit' } }),
        h('button', { className: 'btn', testid: 'rule-cancel', i18n: 'rules.cancel', attrs: { type: 'button' }, on: { click: closeEditor } }),
        state.editing >= 0 ? h('button', { className: 'btn btn-danger-ghost', testid: 'rule-delete', i18n: 'rules.delete', attrs: { type: 'button' }, on: { click: deleteRule } }) : null,
      ]),
    ]);
    editor.addEventListener('submit', function (e) { e.preventDefault(); keepRule(); });
    setTimeout(function () { showErrors(); showPreview(); }, 0);
    return editor;
  }

  function keepRule() {
    validate().then(function () {
      var index = editingIndex();
      var mine = state.errors.filter(function (e) { return e.loc.indexOf('rules[' + index + ']') === 0; });
      if (state.parseError || mine.length) return;
      var made = formRule();
      if (state.editing >= 0) state.doc.rules[state.editing] = made.rule;
      else state.doc.rules.push(made.rule);
      state.editing = null;
      state.form = null;
      changed();
    });
  }

  function closeEditor() {
    state.editing = null;
    state.form = null;
    state.parseError = null;
    render();
    validate();
  }

  function deleteRule() {
    state.doc.rules.splice(state.editing, 1);
    state.editing = null;
    state.form = null;
    changed();
  }

  function changed() {
    state.dirty = true;
    state.publishNote = null;
    render();
    validate();
  }

  // ------------------------------------------------------------------ rules: backtest, publish

  function runBacktest() {
    var made = candidate();
    if (made.parseError) return;
    state.backtestRunning = true;
    state.backtestError = null;
    state.backtest = null;
    render();
    B.api('POST', '/admin/rules/backtest', { rules: made.doc, hours: state.backtestHours || 24 }).then(function (answer) {
      state.backtest = answer;
    }, function (err) {
      state.backtestError = t('rules.backtest_failed', { detail: errorText(err) });
      if (err.body && err.body.errors) { state.errors = err.body.errors; state.valid = false; }
    }).then(function () {
      state.backtestRunning = false;
      render();
    });
  }

  function renderBacktest() {
    if (state.backtestRunning) return h('p', { className: 'admin-muted', testid: 'backtest-result', data: { state: 'running' }, i18n: 'rules.backtest_running' });
    if (state.backtestError) return h('p', { className: 'form-error', testid: 'backtest-result', data: { state: 'failed' }, text: state.backtestError });
    var r = state.backtest;
    if (!r) return null;
    var num = function (v, d) { return B.fmt.number(v, d); };
    var row = function (item, label, testid) {
      return h('tr', { testid: testid, data: { 'rule-id': item.rule_id } }, [
        h('td', { text: label }),
        h('td', { text: num(item.fired) }),
        h('td', { text: num(item.fires_per_hour, 2) }),
        h('td', { text: num(item.peak_fires_per_hour) }),
        h('td', { text: num(item.expected_conversations, 1) }),
        h('td', { text: num(item.agents_needed) }),
      ]);
    };
    return h('section', { className: 'admin-backtest', testid: 'backtest-result', data: { state: 'done' } }, [
      h('p', { className: 'admin-muted', text: t('rules.backtest_summary', { events: num(r.events), visitors: num(r.visitors) }) }),
      r.truncated ? h('p', { className: 'admin-note is-bad', i18n: 'rules.backtest_truncated' }) : null,
      h('table', { className: 'admin-table' }, [
        h('thead', {}, [h('tr', {}, ['rules.bt_rule', 'rules.bt_fired', 'rules.bt_per_hour', 'rules.bt_peak', 'rules.bt_conversations', 'rules.bt_agents'].map(function (k) {
          return h('th', { i18n: k });
        }))]),
        h('tbody', {}, r.rules.map(function (item) { return row(item, item.name + ' (' + item.rule_id + ')', 'backtest-row'); }).concat([
          row(r.total, t('rules.bt_total'), 'backtest-total'),
        ])),
      ]),
    ]);
  }

  function publish() {
    var made = candidate();
    if (made.parseError) return;
    state.publishing = true;
    refreshActions();
    var base = state.rules ? state.rules.version : 0;
    B.api('POST', '/admin/rules/publish', { rules: made.doc, base_version: base }).then(function (answer) {
      state.publishNote = t('rules.published_now', { version: answer.version });
      state.dirty = false;
      state.editing = null;
      state.form = null;
      state.rules.version = answer.version;
      state.rules.published = answer.published;
      state.rules.source = 'console';
      state.rules.rules = answer.rules;
      state.doc = clone(answer.rules);
      state.errors = [];
      state.valid = true;
    }, function (err) {
      if (err.status === 409) { state.stale = true; state.publishNote = t('rules.stale'); }
      else if (err.body && err.body.errors) { state.errors = err.body.errors; state.valid = false; state.publishNote = errorText(err); }
      else state.publishNote = errorText(err);
    }).then(function () {
      state.publishing = false;
      render();
      if (state.errors.length) showErrors();
    });
  }

  // ------------------------------------------------------------------ teams

  function renderTeams() {
    var idInput = h('input', { testid: 'team-new-id', attrs: { type: 'text', autocomplete: 'off', placeholder: t('teams.new_id') } });
    var nameInput = h('input', { testid: 'team-new-name', attrs: { type: 'text', autocomplete: 'off', placeholder: t('teams.new_name') } });
    var error = h('p', { className: 'form-error', testid: 'team-error', attrs: { role: 'alert', hidden: true } });
    var create = h('form', { className: 'admin-inline-form', testid: 'team-create' }, [
      idInput, nameInput,
      h('button', { className: 'btn btn-primary', testid: 'team-create-submit', i18n: 'teams.create', attrs: { type: 'submit' } }),
    ]);
    create.addEventListener('submit', function (e) {
      e.preventDefault();
      B.api('POST', '/admin/teams', { team: idInput.value.trim(), name: nameInput.value.trim() }).then(function (r) {
        state.teams = r.teams;
        render();
      }, function (err) { error.textContent = errorText(err); error.hidden = false; });
    });
    var active = state.agents.filter(function (a) { return a.active; });
    return h('section', { className: 'admin-teams', testid: 'admin-teams' }, [
      h('header', { className: 'admin-header' }, [h('h2', { i18n: 'teams.title' })]),
      h('div', { className: 'admin-cards' }, state.teams.map(function (team) {
        var rename = h('input', { testid: 'team-name', attrs: { type: 'text', 'aria-label': t('teams.new_name') } });
        rename.value = team.name;
        var memberIds = team.members.map(function (m) { return m.id; });
        var pick = h('select', { testid: 'team-add-agent' }, [h('option', { i18n: 'teams.pick', attrs: { value: '' } })].concat(
          active.filter(function (a) { return memberIds.indexOf(a.id) < 0; }).map(function (a) {
            return h('option', { text: a.name, attrs: { value: a.id } });
          })));
        var teamError = h('p', { className: 'form-error', attrs: { role: 'alert', hidden: true } });
        var fail = function (err) { teamError.textContent = errorText(err); teamError.hidden = false; };
        var done = function (r) { state.teams = r.teams; refreshAgents(); };
        return h('article', { className: 'admin-card', testid: 'team-row', data: { team: team.team } }, [
          h('div', { className: 'admin-inline-form' }, [
            h('strong', { text: team.team }),
            rename,
            h('button', { className: 'btn btn-small', testid: 'team-rename', i18n: 'teams.rename', attrs: { type: 'button' }, on: { click: function () {
              B.api('POST', '/admin/teams/' + encodeURIComponent(team.team), { name: rename.value.trim() }).then(done, fail);
            } } }),
          ]),
          h('p', { className: 'admin-subtitle', i18n: 'teams.members' }),
          team.members.length ? h('ul', { className: 'admin-chips' }, team.members.map(function (m) {
            return h('li', { className: 'admin-chip', testid: 'team-member', data: { 'agent-id': m.id } }, [
              m.name,
              h('button', { className: 'admin-chip-x', testid: 'team-remove', text: '×', attrs: { type: 'button', 'aria-label': t('teams.remove', { name: m.name }) }, on: { click: function () {
                B.api('POST', '/admin/teams/' + encodeURIComponent(team.team) + '/members/' + encodeURIComponent(m.id) + '/remove', {}).then(done, fail);
              } } }),
            ]);
          })) : h('p', { className: 'admin-muted', i18n: 'teams.no_members' }),
          h('div', { className: 'admin-inline-form' }, [
            pick,
            h('button', { className: 'btn btn-small', testid: 'team-add', i18n: 'teams.add', attrs: { type: 'button' }, on: { click: function () {
              if (!pick.value) return;
              B.api('POST', '/admin/teams/' + encodeURIComponent(team.team) + '/members', { agent_id: pick.value }).then(done, fail);
            } } }),
          ]),
          teamError,
        ]);
      })),
      create,
      error,
    ]);
  }

  function refreshAgents() {
    return B.api('GET', '/admin/agents').then(function (r) { state.agents = r.agents; render(); }, function () { render(); });
  }

  // ------------------------------------------------------------------ agents

  function teamChecks(selected, testid) {
    return h('span', { className: 'admin-checks', testid: testid }, state.teams.map(function (team) {
      var box = h('input', { attrs: { type: 'checkbox', value: team.team, checked: selected.indexOf(team.team) >= 0 } });
      return h('label', { className: 'admin-check' }, [box, ' ' + team.name]);
    }));
  }

  function checked(container) {
    return Array.prototype.slice.call(container.querySelectorAll('input:checked')).map(function (n) { return n.value; });
  }

  function roleSelect(value, testid) {
    var select = h('select', { testid: testid }, [
      h('option', { i18n: 'agents.role_agent', attrs: { value: 'agent' } }),
      h('option', { i18n: 'agents.role_admin', attrs: { value: 'admin' } }),
    ]);
    select.value = value;
    return select;
  }

  function renderAgents() {
    var rows = state.agents.map(function (agent) {
      var role = roleSelect(agent.role, 'agent-role');
      var max = h('input', { testid: 'agent-max-chats', attrs: { type: 'number', min: 1, max: 50, 'aria-label': t('agents.max_chats') } });
      max.value = String(agent.max_chats);
      var avatar = h('input', { className: 'admin-avatar-input', testid: 'agent-avatar', attrs: { type: 'url', placeholder: t('agents.avatar_url'), 'aria-label': t('agents.avatar_url') } });
      avatar.value = agent.avatar_url || '';
      var teams = teamChecks(agent.teams, 'agent-teams');
      var rowError = h('p', { className: 'form-error', testid: 'agent-error', attrs: { role: 'alert', hidden: true } });
      var fail = function (err) { rowError.textContent = errorText(err); rowError.hidden = false; };
      var status = agent.active ? (agent.invite_pending ? t('agents.pending') : t('status.' + agent.status)) : t('agents.deactivated');
      return h('tr', { className: 'agent-row' + (agent.active ? '' : ' is-inactive'), testid: 'agent-row', data: { 'agent-id': agent.id, active: String(agent.active) } }, [
        h('td', {}, [h('strong', { text: agent.name }), h('div', { className: 'admin-muted', text: agent.email }), agent.active ? avatar : null]),
        h('td', {}, [role]),
        h('td', { testid: 'agent-status', text: status }),
        h('td', { testid: 'agent-load', text: agent.open_chats + ' / ' + agent.max_chats }),
        h('td', {}, [max]),
        h('td', {}, [teams]),
        h('td', { className: 'admin-row-actions' }, agent.active ? [
          h('button', { className: 'btn btn-small btn-primary', testid: 'agent-save', i18n: 'agents.save', attrs: { type: 'button' }, on: { click: function () {
            B.api('POST', '/admin/agents/' + encodeURIComponent(agent.id), {
              role: role.value, max_chats: Number(max.value), teams: checked(teams), avatar_url: avatar.value.trim(),
            }).then(function () { return Promise.all([refreshAgents(), B.api('GET', '/admin/teams').then(function (r) { state.teams = r.teams; })]); }, fail);
          } } }),
          h('button', { className: 'btn btn-small', testid: 'agent-new-link', i18n: 'agents.new_link', attrs: { type: 'button' }, on: { click: function () {
            B.api('POST', '/admin/agents/' + encodeURIComponent(agent.id) + '/invite', {}).then(function (r) {
              state.invite = { name: agent.name, invite: r.invite };
              render();
            }, fail);
          } } }),
          agent.id !== (B.agent && B.agent.id) ? h('button', { className: 'btn btn-small btn-danger-ghost', testid: 'agent-deactivate', i18n: 'agents.deactivate', attrs: { type: 'button' }, on: { click: function () {
            if (!window.confirm(t('agents.confirm_deactivate', { name: agent.name }))) return;
            B.api('POST', '/admin/agents/' + encodeURIComponent(agent.id) + '/deactivate', {}).then(refreshAgents, fail);
          } } }) : null,
          rowError,
        ] : [h('button', { className: 'btn btn-small', testid: 'agent-new-link', i18n: 'agents.new_link', attrs: { type: 'button' }, on: { click: function () {
          B.api('POST', '/admin/agents/' + encodeURIComponent(agent.id) + '/invite', {}).then(function (r) {
            state.invite = { name: agent.name, invite: r.invite };
            render();
          }, fail);
        } } }), rowError]),
      ]);
    });
    return h('section', { className: 'admin-agents', testid: 'admin-agents' }, [
      h('header', { className: 'admin-header' }, [h('h2', { i18n: 'agents.title' })]),
      h('table', { className: 'admin-table' }, [
        h('thead', {}, [h('tr', {}, ['agents.name', 'agents.role', 'agents.status', 'agents.load', 'agents.max_chats', 'agents.teams', ''].map(function (k) {
          return h('th', k ? { i18n: k } : {});
        }))]),
        h('tbody', {}, rows),
      ]),
      renderInvite(),
    ]);
  }

  function renderInvite() {
    var name = h('input', { testid: 'invite-name', attrs: { type: 'text', autocomplete: 'off', required: true } });
    var email = h('input', { testid: 'invite-email', attrs: { type: 'email', autocomplete: 'off', required: true } });
    var role = roleSelect('agent', 'invite-role');
    var max = h('input', { testid: 'invite-max-chats', attrs: { type: 'number', min: 1, max: 50, value: 5 } });
    var teams = teamChecks([], 'invite-teams');
    var error = h('p', { className: 'form-error', testid: 'invite-error', attrs: { role: 'alert', hidden: true } });
    var form = h('form', { className: 'admin-editor', testid: 'agent-invite' }, [
      h('h3', { i18n: 'agents.invite' }),
      h('div', { className: 'admin-grid' }, [
        h('label', { className: 'field' }, [h('span', { i18n: 'agents.name' }), name]),
        h('label', { className: 'field' }, [h('span', { i18n: 'agents.email' }), email]),
        h('label', { className: 'field' }, [h('span', { i18n: 'agents.role' }), role]),
        h('label', { className: 'field' }, [h('span', { i18n: 'agents.max_chats' }), max]),
      ]),
      h('div', { className: 'field' }, [h('span', { i18n: 'agents.teams' }), teams]),
      error,
      h('button', { className: 'btn btn-primary', testid: 'invite-submit', i18n: 'agents.invite_send', attrs: { type: 'submit' } }),
    ]);
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      B.api('POST', '/admin/agents', {
        name: name.value.trim(), email: email.value.trim(), role: role.value,
        max_chats: Number(max.value), teams: checked(teams),
      }).then(function (r) {
        state.invite = { name: r.agent.name, invite: r.invite };
        return Promise.all([refreshAgents(), B.api('GET', '/admin/teams').then(function (x) { state.teams = x.teams; })]);
      }, function (err) { error.textContent = errorText(err); error.hidden = false; });
    });
    var shown = null;
    if (state.invite) {
      var link = window.location.origin + state.invite.invite.path;
      var box = h('input', { testid: 'invite-link', attrs: { type: 'text', readonly: true } });
      box.value = link;
      shown = h('div', { className: 'admin-invite-link', testid: 'invite-result' }, [
        h('p', { text: t('agents.invite_link', { name: state.invite.name }) }),
        box,
      ]);
    }
    return h('div', {}, [shown, form]);
  }

  // ------------------------------------------------------------------ site settings

  function renderSite() {
    var s = state.site || {};
    var fields = {};
    function text(key, labelKey, value, type) {
      var node = h(type === 'textarea' ? 'textarea' : 'input', { testid: 'site-' + key.replace(/_/g, '-'), attrs: type === 'textarea' ? { rows: 3 } : { type: type || 'text', autocomplete: 'off' } });
      node.value = value == null ? '' : value;
      fields[key] = node;
      return h('label', { className: 'field admin-field' }, [h('span', { i18n: labelKey }), node, h('div', { className: 'admin-field-errors', data: { 'site-error-for': key } })]);
    }
    var color = h('input', { testid: 'site-color-picker', attrs: { type: 'color', 'aria-label': t('site.color') } });
    color.value = /^#[0-9a-f]{6}$/i.test(s.color || '') ? s.color : '#1f6feb';
    var typing = h('input', { testid: 'site-typing-preview', attrs: { type: 'checkbox', checked: !!s.typing_preview } });
    var language = h('select', { testid: 'site-language' }, [
      h('option', { i18n: 'site.language_auto', attrs: { value: 'auto' } }),
      h('option', { i18n: 'language.en', attrs: { value: 'en' } }),
      h('option', { i18n: 'language.fi', attrs: { value: 'fi' } }),
    ]);
    language.value = s.language || 'auto';
    var team = h('select', { testid: 'site-default-team' }, teamOptions(s.default_team));
    var hours = s.business_hours || {};
    var dayInputs = {};
    var days = h('div', { className: 'admin-days', testid: 'site-hours' }, WEEKDAYS.map(function (day) {
      // an empty day is closed: the placeholder says so (an example time would look saved)
      var node = h('input', { className: 'admin-hours', testid: 'site-hours-' + day, attrs: { type: 'text', placeholder: t('site.hours_none'), autocomplete: 'off' } });
      node.value = (hours[day] || []).join(', ');
      dayInputs[day] = node;
      return h('label', { className: 'field' }, [h('span', { i18n: 'day.' + day }), node]);
    }));
    var colorText = text('color', 'site.color', s.color);
    color.addEventListener('input', function () { fields.color.value = color.value; });
    var note = h('p', { className: 'admin-note', testid: 'site-status', attrs: { role: 'status' }, text: state.siteNote || '' });
    var others = h('div', { className: 'admin-field-errors', testid: 'site-errors' });
    var form = h('form', { className: 'admin-editor', testid: 'site-form', attrs: { novalidate: true } }, [
      text('allowed_origins', 'site.origins', (s.allowed_origins || []).join('\n'), 'textarea'),
      text('greeting', 'site.greeting', s.greeting),
      h('div', { className: 'admin-inline-form' }, [colorText, color]),
      h('label', { className: 'admin-check' }, [typing, ' ', h('span', { i18n: 'site.typing_preview' })]),
      h('label', { className: 'field' }, [h('span', { i18n: 'site.language' }), language]),
      text('offline_message', 'site.offline_message', s.offline_message),
      h('label', { className: 'field' }, [h('span', { i18n: 'site.default_team' }), team]),
      text('timezone', 'site.timezone', s.timezone),
      h('div', { className: 'field' }, [h('span', { i18n: 'site.hours' }), days, h('div', { className: 'admin-field-errors', data: { 'site-error-for': 'business_hours' } })]),
      others,
      h('button', { className: 'btn btn-primary', testid: 'site-save', i18n: 'site.save', attrs: { type: 'submit' } }),
      note,
    ]);
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var body = {
        allowed_origins: fields.allowed_origins.value.split(/\n|,/).map(function (x) { return x.trim(); }).filter(Boolean),
        greeting: fields.greeting.value,
        color: fields.color.value.trim(),
        typing_preview: typing.checked,
        language: language.value,
        offline_message: fields.offline_message.value,
        default_team: team.value,
        timezone: fields.timezone.value.trim() || 'UTC',
      };
      var week = {};
      var open = false;
      WEEKDAYS.forEach(function (day) {
        var ranges = dayInputs[day].value.split(',').map(function (x) { return x.trim(); }).filter(Boolean);
        week[day] = ranges;
        if (ranges.length) open = true;
      });
      week.closed_dates = hours.closed_dates || [];  // not on the form: kept as they are
      if (open) body.business_hours = week; else body.clear_business_hours = true;
      form.querySelectorAll('[data-testid="site-error"]').forEach(function (n) { n.remove(); });
      B.api('POST', '/admin/site', body).then(function (r) {
        state.site = r.site;
        state.siteNote = t('admin.saved');
        render();
      }, function (err) {
        note.textContent = errorText(err);
        ((err.body && err.body.errors) || []).forEach(function (error) {
          var key = String(error.loc || '').split(/[.[]/)[0];
          var slot = form.querySelector('[data-site-error-for="' + key + '"]') || others;
          slot.appendChild(h('p', { className: 'form-error', testid: 'site-error', data: { loc: error.loc }, text: error.msg }));
        });
      });
    });
    state.siteNote = null;
    // read-only: what a store owner pastes into the snippet and their Segment SDKs
    function key(name, value) {
      var node = h('input', { testid: 'site-' + name.replace(/_/g, '-'), attrs: { type: 'text', readonly: true } });
      node.value = value || '';
      return h('label', { className: 'field admin-field' }, [h('span', { i18n: 'site.' + name }), node]);
    }
    var keys = h('div', { className: 'admin-editor', testid: 'site-keys' }, [
      h('h3', { i18n: 'site.keys' }),
      key('site_key', s.site_key),
      key('write_key', s.write_key),
    ]);
    return h('section', { className: 'admin-site', testid: 'admin-site' }, [
      h('header', { className: 'admin-header' }, [h('h2', { i18n: 'site.title' })]),
      keys,
      form,
    ]);
  }

  // ------------------------------------------------------------------ set-password page

  function setPasswordPage() {
    var match = /^#set-password=([A-Za-z0-9_-]{20,200})$/.exec(window.location.hash || '');
    if (!match) return;
    var token = match[1];
    var password = h('input', { testid: 'setpw-password', attrs: { type: 'password', autocomplete: 'new-password', required: true, minlength: 10 } });
    var confirm = h('input', { testid: 'setpw-confirm', attrs: { type: 'password', autocomplete: 'new-password', required: true } });
    var error = h('p', { className: 'form-error', testid: 'setpw-error', attrs: { role: 'alert', hidden: true } });
    var form = h('form', { className: 'login-card admin-setpw-card', testid: 'setpw-form' }, [
      h('h1', { className: 'brand brand-large', text: 'Beckon' }),
      h('p', { className: 'login-sub', i18n: 'setpw.title' }),
      h('label', { className: 'field' }, [h('span', { i18n: 'setpw.password' }), password]),
      h('label', { className: 'field' }, [h('span', { i18n: 'setpw.confirm' }), confirm]),
      error,
      h('button', { className: 'btn btn-primary btn-block', testid: 'setpw-submit', i18n: 'setpw.submit', attrs: { type: 'submit' } }),
    ]);
    var page = h('main', { className: 'login admin-setpw', testid: 'setpw-page' }, [form]);
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      error.hidden = true;
      if (password.value !== confirm.value) { error.textContent = t('setpw.mismatch'); error.hidden = false; return; }
      B.api('POST', '/invite/accept', { token: token, password: password.value }, { login: true }).then(function (r) {
        window.history.replaceState(null, '', window.location.pathname);
        B.clear(form);
        form.appendChild(h('p', { testid: 'setpw-done', text: t('setpw.done', { name: r.name, email: r.email }) }));
        form.appendChild(h('button', { className: 'btn btn-primary btn-block', testid: 'setpw-login', i18n: 'setpw.to_login', attrs: { type: 'button' }, on: { click: function () { page.remove(); } } }));
      }, function (err) { error.textContent = errorText(err); error.hidden = false; });
    });
    document.body.appendChild(page);
  }

  // ------------------------------------------------------------------ wiring

  B.views.register('admin', {
    label: 'nav.admin',
    adminOnly: true,
    onShow: function () { render(); load(); },
  });
  B.on('locale', function () { if (B.views.current === 'admin') render(); });
  B.on('reset', function () { state = fresh(); var c = root(); if (c) B.clear(c); });

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', setPasswordPage);
  else setPasswordPage();
})();
