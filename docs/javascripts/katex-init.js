// Render the $...$ and $$...$$ that pymdownx.arithmatex (generic mode) leaves in .arithmatex elements.
// KaTeX is vendored under assets/katex: the site needs no network.
function renderMath() {
  document.querySelectorAll(".arithmatex").forEach(function (el) {
    renderMathInElement(el, {
      delimiters: [
        { left: "\\(", right: "\\)", display: false },
        { left: "\\[", right: "\\]", display: true },
      ],
      throwOnError: false,
    });
  });
}
if (typeof document$ !== "undefined") {
  document$.subscribe(renderMath); // mkdocs-material's instant loading
} else {
  document.addEventListener("DOMContentLoaded", renderMath);
}
