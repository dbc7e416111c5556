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

/* pnc-book: explorer controls for keyboard and screen-reader users. The widget library renders a slider as a
   handle (role="slider") without an accessible name, announcing its position index ("2") rather than the value
   shown beside it ("0.35"), and toggle buttons without their group's label. Each control is given its visible
   label as its name, the shown value as its value text, and every change is announced through a polite live
   region of its explorer (checked by tests/test_browser_a11y.py). */
(function () {
  'use strict';
  var counter = 0;
  function labelOf(control) {
    var label = control.querySelector(':scope > .widget-label');
    if (!label) { return null; }
    if (label.getAttribute('title') === 'null') { label.removeAttribute('title'); }
    if (!label.id) { counter += 1; label.id = 'pnc-control-label-' + counter; }
    return label;
  }
  function liveRegion(box) {
    var region = box.querySelector(':scope > .pnc-explorer-status');
    if (!region) {
      region = document.createElement('div');
      region.className = 'pnc-explorer-status pnc-visually-hidden';
      region.setAttribute('role', 'status');
      region.setAttribute('aria-live', 'polite');
      box.appendChild(region);
    }
    return region;
  }
  function announce(box, text) {
    var region = liveRegion(box);
    if (region.textContent !== text) { region.textContent = text; }
  }
  function wireSlider(box, slider) {
    var handle = slider.querySelector('.noUi-handle');
    var readout = slider.querySelector(':scope > .widget-readout');
    var label = labelOf(slider);
    if (!handle || !label) { return; }
    handle.setAttribute('aria-labelledby', label.id);
    if (readout) {
      readout.setAttribute('contenteditable', 'false');  // the handle is the control; the readout only shows
      readout.setAttribute('aria-hidden', 'true');         // its value, which the handle's value text carries
    }
    var last = null;
    function sync() {
      var text = readout ? readout.textContent.trim() : '';
      if (!text) { return; }
      if (handle.getAttribute('aria-valuetext') !== text) { handle.setAttribute('aria-valuetext', text); }
      if (last !== null && last !== text) { announce(box, label.textContent.trim() + ': ' + text); }
      last = text;
    }
    sync();
    var watch = new MutationObserver(sync);
    if (readout) { watch.observe(readout, { childList: true, characterData: true, subtree: true }); }
    watch.observe(handle, { attributes: true, attributeFilter: ['aria-valuetext'] });
  }
  function wireToggles(box, group) {
    var label = labelOf(group);
    var buttons = group.querySelector('.widget-toggle-buttons') || group;
    buttons.setAttribute('role', 'group');
    if (label) { buttons.setAttribute('aria-labelledby', label.id); }
    var last = null;
    function sync() {
      var active = null;
      Array.prototype.forEach.call(buttons.querySelectorAll('button'), function (button) {
        var on = button.classList.contains('mod-active');
        if (button.getAttribute('aria-pressed') !== String(on)) { button.setAttribute('aria-pressed', String(on)); }
        if (on) { active = button.textContent.trim(); }
      });
      if (active !== null && last !== null && last !== active) {
        announce(box, (label ? label.textContent.trim() + ': ' : '') + active);
      }
      last = active;
    }
    sync();
    new MutationObserver(sync).observe(buttons, { attributes: true, attributeFilter: ['class'], subtree: true });
  }
  function wire(box) {
    liveRegion(box);
    Array.prototype.forEach.call(box.querySelectorAll('.widget-slider'), function (slider) {
      if (slider.dataset.pncWired) { return; }
      if (!slider.querySelector('.noUi-handle')) { return; }  // not rendered yet
      slider.dataset.pncWired = '1';
      wireSlider(box, slider);
    });
    Array.prototype.forEach.call(box.querySelectorAll('.widget-toggle-buttons'), function (group) {
      if (group.dataset.pncWired || !group.querySelector('button')) { return; }
      group.dataset.pncWired = '1';
      wireToggles(box, group);
    });
  }
  function scan() {
    Array.prototype.forEach.call(document.querySelectorAll('.pnc-explorer'), wire);
  }
  var pending = null;
  function later() {
    if (pending) { return; }
    pending = setTimeout(function () { pending = null; scan(); }, 50);
  }
  function init() {
    scan();
    new MutationObserver(later).observe(document.body, { childList: true, subtree: true });
  }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();

/* pnc-book: repairs of the theme's markup that axe-core reports as WCAG 2.1 AA failures (tests/test_browser_a11y.py):
   - buttons and toggles whose aria-label hides their visible text (the search field says "Search… Ctrl+K" but is
     named "Search"; a code toggle shows "Show code cell source" but is named "Toggle hidden content"): the visible
     text becomes the name; the colour-mode button's icons (each with a title) are hidden from its name;
   - bibliography entries (role "doc-biblioentry", deprecated in ARIA 1.2) inside a role="list": list items;
   - regions that scroll sideways (wide tables, code, display formulas) without anything focusable inside: reachable
     with the keyboard (tabindex 0), so they can be scrolled with the arrow keys. */
(function () {
  'use strict';
  function each(selector, fn) { Array.prototype.forEach.call(document.querySelectorAll(selector), fn); }
  var FOCUSABLE = 'a[href], button, input, select, textarea, summary, [tabindex]:not([tabindex="-1"])';
  function scrollRegions() {
    each('article.bd-article *', function (el) {
      if (el.hasAttribute('data-pnc-scroll-focus')) {
        if (el.scrollWidth <= el.clientWidth + 1) {  // no longer scrolls (wider window): leave the Tab order
          el.removeAttribute('tabindex');
          el.removeAttribute('data-pnc-scroll-focus');
        }
        return;
      }
      var style = getComputedStyle(el);
      var scrolls = /(auto|scroll)/.test(style.overflowX + style.overflowY) &&
        (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1);
      if (!scrolls || el.hasAttribute('tabindex') || el.querySelector(FOCUSABLE)) { return; }
      el.setAttribute('tabindex', '0');
      el.setAttribute('data-pnc-scroll-focus', '');
    });
  }
  function names() {
    each('summary[aria-label="Toggle hidden content"]', function (el) { el.removeAttribute('aria-label'); });
    each('.search-button-field[aria-label]', function (el) {
      if (el.textContent.trim()) { el.removeAttribute('aria-label'); }
    });
    // the button's tooltip names it; its icons are <i title="Light"> or, once Font Awesome has replaced them,
    // <svg><title>Light</title>...</svg>
    each('.theme-switch-button .theme-switch', function (el) {
      el.setAttribute('aria-hidden', 'true');
      el.removeAttribute('title');
      Array.prototype.forEach.call(el.querySelectorAll('title'), function (t) { t.remove(); });
    });
    each('[role="list"] > [role="doc-biblioentry"]', function (el) { el.setAttribute('role', 'listitem'); });
  }
  var pending = null;
  function later() {
    clearTimeout(pending);
    pending = setTimeout(function () {
      names();  // again: the theme's own scripts may have run after ours
      scrollRegions();
      document.documentElement.setAttribute('data-pnc-a11y', 'ready');  // the browser tests wait for this
    }, 200);
  }
  function init() {
    names();
    scrollRegions();
    // Font Awesome swaps icons for SVGs whenever it runs: clean the buttons again after each swap
    each('.theme-switch-button', function (button) {
      new MutationObserver(function () { names(); }).observe(button, { childList: true, subtree: true });
    });
    window.addEventListener('resize', later);
    window.addEventListener('load', later);
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) { mj.startup.promise.then(later); }
    setTimeout(later, 1500);  // MathJax and the widgets render after load
  }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
