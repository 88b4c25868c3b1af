// The JavaScript linter (`make lint`, `npm run lint`): rules that catch real bugs, no style.
// The console is native ES modules; the widget and the tracker's snippet are classic scripts
// pasted or loaded on other people's pages.
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
    files: ['services/chat/src/chat/static/widget.js', 'services/tracker/src/tracker/static/*.js'],
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
    files: ['eslint.config.js'],
    languageOptions: { sourceType: 'module', globals: { ...globals.node } },
    rules: { ...js.configs.recommended.rules },
  },
];
