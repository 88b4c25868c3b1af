// The JavaScript linter (`make lint`, or `npm run lint` after `npm ci`): rules that catch real
// bugs (undefined and unused names, == where === is meant, ...), no style. The console is
// native ES modules; the widget, the tracker's snippet and the demo store's scripts are classic
// scripts loaded on shop pages. package.json's "lint" script names the files.
import js from '@eslint/js';
import globals from 'globals';

const bugs = {
  'no-undef': 'error',
  'no-unused-vars': ['error', { args: 'none', caughtErrors: 'none' }],
  'no-shadow-restricted-names': 'error',
  'no-implicit-globals': 'error',
  'no-use-before-define': ['error', { functions: false, classes: false, variables: false }],
  'eqeqeq': ['error', 'always', { null: 'ignore' }],
  'no-self-compare': 'error',
  'no-template-curly-in-string': 'error',
  'no-unreachable-loop': 'error',
  'no-constructor-return': 'error',
  'array-callback-return': 'error',
};

export default [
  { ignores: ['node_modules/**', '.venv/**', '**/.venv/**'] },
  {
    files: ['services/chat/src/chat/static/console/**/*.js'],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: { ...globals.browser },
    },
    rules: { ...js.configs.recommended.rules, ...bugs },
  },
  {
    // the chat widget: a classic script on shop pages, with readable names and === throughout
    files: ['services/chat/src/chat/static/widget.js'],
    languageOptions: {
      ecmaVersion: 2020,
      sourceType: 'script',
      globals: { ...globals.browser },
    },
    rules: { ...js.configs.recommended.rules, ...bugs },
  },
  {
    files: ['services/tracker/src/tracker/static/*.js'],
    languageOptions: {
      ecmaVersion: 2020,
      sourceType: 'script',
      globals: { ...globals.browser },
    },
    rules: {
      ...js.configs.recommended.rules,
      ...bugs,
      // hand-minified snippets compare with == on purpose (size budget)
      'eqeqeq': 'off',
      // the loader is an expression statement by design (`!function(){}()`)
      'no-unused-expressions': 'off',
    },
  },
  {
    // the demo store calls the snippet's global (loader.js defines it on the page)
    files: ['tools/devstack/src/beckon_devstack/demo_store/static/*.js'],
    languageOptions: {
      ecmaVersion: 2020,
      sourceType: 'script',
      globals: { ...globals.browser, beckon: 'readonly' },
    },
    rules: { ...js.configs.recommended.rules, ...bugs, 'eqeqeq': 'off', 'no-unused-expressions': 'off' },
  },
  {
    files: ['eslint.config.js'],
    languageOptions: { sourceType: 'module', globals: { ...globals.node } },
    rules: { ...js.configs.recommended.rules },
  },
];
