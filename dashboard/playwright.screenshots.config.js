// The screenshot gallery: `npm run screenshots` with a running server writes PNGs of
// every page at 1280 and 375 px into ../docs/screenshots/.
import base from './playwright.config.js';

export default {
  ...base,
  testIgnore: undefined,
  testMatch: /screenshots\.spec\.js/,
  timeout: 120_000,
};
