// The book's own small fixes of the theme's behaviour (loaded on every page).
(() => {
  "use strict";

  // 1. The navigation toggle. The theme puts two buttons with the class primary-toggle on every
  // page (one in a top navbar the book hides, one in the article header) and its scripts bind
  // only the first, so the visible one did nothing. Forward its clicks to the bound one.
  document.addEventListener(
    "click",
    (event) => {
      const button = event.target.closest && event.target.closest(".primary-toggle");
      if (!button) return;
      const bound = document.querySelector(".primary-toggle");
      if (!bound || bound === button) return;
      event.preventDefault();
      event.stopPropagation();
      bound.click();
    },
    true,
  );

  // 2. Search snippets: the page text that Sphinx cuts snippets from still holds raw TeX
  // (\(...\), \[...\]); show display math as "[equation]" and inline math as plain symbols.
  const GREEK = {
    alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", varepsilon: "ε", lambda: "λ",
    mu: "μ", nu: "ν", pi: "π", rho: "ρ", sigma: "σ", tau: "τ", theta: "θ", phi: "φ", psi: "ψ",
    omega: "ω", Delta: "Δ", Pi: "Π", Sigma: "Σ", nabla: "∇", infty: "∞", sum: "Σ", le: "≤",
    leq: "≤", ge: "≥", geq: "≥", ne: "≠", neq: "≠", approx: "≈", cdot: "·", times: "×",
    mid: "|", in: "∈", to: "→", E: "E", R: "R", log: "log", max: "max", min: "min",
  };
  const plain = (tex) =>
    tex
      .replace(/\\(?:mathbb|mathrm|mathcal|mathsf|mathbf|boldsymbol|operatorname\*?|text|hat|bar|tilde)\{([^{}]*)\}/g, "$1")
      .replace(/\\([{}])/g, "$1")
      .replace(/\\([A-Za-z]+)/g, (m, name) => (name in GREEK ? GREEK[name] : name))
      .replace(/\\[,;:! ]/g, " ")
      .replace(/[{}]/g, "")
      .replace(/\s+/g, " ")
      .trim();
  const patchSearch = () => {
    if (typeof Search === "undefined" || !Search.htmlToText || Search.__rlbook) return;
    const original = Search.htmlToText;
    Search.htmlToText = (htmlString, anchor) => {
      const doc = new DOMParser().parseFromString(htmlString, "text/html");
      doc.querySelectorAll("div.math").forEach((el) => el.replaceWith("[equation]"));
      doc.querySelectorAll("span.math").forEach((el) => {
        el.replaceWith(plain(el.textContent.replace(/^\\\(|\\\)$/g, "")));
      });
      return original(doc.documentElement.outerHTML, anchor);
    };
    Search.__rlbook = true;
  };
  patchSearch();
  document.addEventListener("DOMContentLoaded", patchSearch);
})();
