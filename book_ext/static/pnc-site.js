/* pnc-book: make every sidebar toggle work (see book_ext/pnc_site.py), and let an inline formula wider than its
   line scroll sideways instead of being cut off at the right edge (MathJax 3 does not break inline math). */
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
  function lineEnd(el) {
    var block = el.parentElement;
    while (block && getComputedStyle(block).display.indexOf('inline') === 0) { block = block.parentElement; }
    if (!block) { return Infinity; }
    return block.getBoundingClientRect().right - parseFloat(getComputedStyle(block).paddingRight || '0');
  }
  function markWideInlineMath() {
    var formulas = document.querySelectorAll('mjx-container:not([display="true"])');
    Array.prototype.forEach.call(formulas, function (el) { el.classList.remove('pnc-wide-inline'); });
    Array.prototype.forEach.call(formulas, function (el) {
      var box = el.getBoundingClientRect();
      if (box.width > 0 && box.right > lineEnd(el) + 1) { el.classList.add('pnc-wide-inline'); }
    });
    document.documentElement.setAttribute('data-pnc-math', 'marked');
  }
  function afterTypesetting(attempt) {
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) {
      mj.startup.promise.then(markWideInlineMath);
    } else if (attempt < 100 && document.querySelector('script[src*="mathjax"]')) {  // loads asynchronously
      setTimeout(function () { afterTypesetting(attempt + 1); }, 200);
    } else {
      markWideInlineMath();
    }
  }
  var pending = null;
  function later() {
    clearTimeout(pending);
    pending = setTimeout(markWideInlineMath, 150);
  }
  function init() {
    forward('.primary-toggle');
    forward('.secondary-toggle');
    afterTypesetting(0);
    window.addEventListener('resize', later);
    document.addEventListener('toggle', later, true);  // a folded proof or solution opened: its formulas appear
    document.addEventListener('click', function (event) {
      if (event.target.closest && event.target.closest('summary, .dropdown, details')) { later(); }
    });
  }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
