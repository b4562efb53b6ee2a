// Search as you type: plain JavaScript, no network. Every word typed must appear in an
// item's data-search text. A card whose own text matches shows whole; otherwise it shows
// only its matching rows, and it is hidden when none match.
(function () {
  "use strict";
  var box = document.getElementById("search");
  var status = document.getElementById("search-count");
  var empty = document.getElementById("no-results");
  var emptyQuery = document.getElementById("no-results-query");
  var initialStatus = status.textContent;
  var cards = [].slice.call(document.querySelectorAll("[data-card]")).map(function (card) {
    return {
      el: card,
      kind: card.getAttribute("data-card"),
      text: card.getAttribute("data-search").toLowerCase(),
      nav: document.querySelector('[data-nav="' + CSS.escape(card.id) + '"]'),
      blocks: [].slice.call(card.querySelectorAll("[data-block]")),
      rows: [].slice.call(card.querySelectorAll("[data-row]")).map(function (row) {
        return { el: row, kind: row.getAttribute("data-row"), text: row.getAttribute("data-search").toLowerCase() };
      })
    };
  });
  var sections = [].slice.call(document.querySelectorAll("[data-section]"));

  function words(query) {
    return query.toLowerCase().split(/\s+/).filter(function (w) { return w.length > 0; });
  }

  function matches(text, terms) {
    for (var i = 0; i < terms.length; i++) {
      if (text.indexOf(terms[i]) < 0) { return false; }
    }
    return true;
  }

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  function apply() {
    var terms = words(box.value);
    var shown = { datasource: 0, input: 0, tracker: 0, field: 0 };
    cards.forEach(function (card) {
      var own = terms.length === 0 || matches(card.text, terms);
      var anyRow = false;
      card.rows.forEach(function (row) {
        var rowMatch = terms.length > 0 && matches(row.text, terms);
        row.el.hidden = !(own || rowMatch);
        row.el.classList.toggle("hit", rowMatch);
        if (rowMatch) { anyRow = true; }
        if (terms.length > 0 && !row.el.hidden && row.kind === "field") { shown.field++; }
      });
      card.blocks.forEach(function (block) {
        block.hidden = block.querySelector("[data-row]:not([hidden])") === null;
      });
      var visible = own || anyRow;
      card.el.hidden = !visible;
      if (card.nav) { card.nav.hidden = !visible; }
      if (visible) { shown[card.kind]++; }
    });
    sections.forEach(function (section) {
      section.hidden = section.querySelector("[data-card]:not([hidden])") === null;
    });
    var total = shown.datasource + shown.input + shown.tracker;
    empty.hidden = terms.length === 0 || total > 0;
    emptyQuery.textContent = box.value;
    status.textContent = terms.length === 0 ? initialStatus :
      [plural(shown.field, "field", "fields"), plural(shown.datasource, "data source", "data sources"),
       plural(shown.input, "input", "inputs"), plural(shown.tracker, "tracker", "trackers")].join(" · ");
    try { history.replaceState(null, "", terms.length ? "#q=" + encodeURIComponent(box.value) : location.pathname); } catch (e) { /* file:// may refuse */ }
  }

  box.addEventListener("input", apply);
  document.addEventListener("keydown", function (event) {
    if (event.key === "/" && document.activeElement !== box) { event.preventDefault(); box.focus(); box.select(); }
    if (event.key === "Escape" && document.activeElement === box) { box.value = ""; apply(); }
  });
  if (location.hash.indexOf("#q=") === 0) {
    box.value = decodeURIComponent(location.hash.slice(3));
    apply();
  }
}());
