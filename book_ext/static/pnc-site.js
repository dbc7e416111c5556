/* pnc-book: make every sidebar toggle work (see book_ext/pnc_site.py). */
(function () {
  'use strict';
  function forward(selector) {
    var buttons = document.querySelectorAll(selector);
    if (buttons.length < 2) { return; }
    var bound = buttons[0];  // the one pydata-sphinx-theme bound its handler to
    Array.prototype.slice.call(buttons, 1).forEach(function (button) {
      button.addEventListener('click', function (event) {
        event.preventDefault();
        event.stopPropagation();
        bound.click();
      });
    });
  }
  function init() {
    forward('.primary-toggle');
    forward('.secondary-toggle');
  }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
