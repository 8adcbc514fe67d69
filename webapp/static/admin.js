// The admin panel's click handlers, which Flask-Admin's templates put inline (onclick=...).
// Greenbar's Content-Security-Policy refuses inline script, so templates/admin/ carries them
// as data attributes and this file acts on them.
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var confirming = event.target.closest("[data-confirm]");
    if (confirming && !window.confirm(confirming.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    var action = event.target.closest("[data-model-action]");
    if (action) {
      event.preventDefault();
      window.modelActions.execute(action.dataset.modelAction);
      return;
    }
    // links that only open menus or tabs: following "#" or "javascript:" would move the page
    var placeholder = event.target.closest("a[href='#'], a[href^='javascript:']");
    if (placeholder) {
      event.preventDefault();
    }
  });
})();
